"""GPU backends: each reads this Pod's GPUs one way (NVML in process, nvidia-smi, DCGM, or
the launcher's relay in the trainer's container) and returns a `Snapshot`;
`watcher.gpu.select` picks one, the monitor polls it.

What a backend is, for the monitor and for `select`:
"""

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from watcher.gpu.model import GpuReading, Snapshot

OnEvent = Callable[[GpuReading | None], None]
"""Called on the loop for each GPU event; None: the watching broke, poll now."""


class GpuBackend(Protocol):
    name: str

    async def poll(self) -> Snapshot:
        """Read every GPU once; bounded in time, never raises for a sick GPU."""

    async def close(self) -> None:
        """Release what the backend holds (NVML, processes, sessions)."""

    def status(self) -> dict[str, Any]:
        """What only this backend knows, for /status (command, URL, events...)."""


@runtime_checkable
class EventSource(Protocol):
    """A backend that also delivers events (NVML's Xid events) between polls."""

    def listen(self, on_event: OnEvent) -> None:
        """Call ``on_event`` on the loop for each GPU event from now on."""
