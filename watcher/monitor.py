"""What every monitor looks like to the rest of the watcher.

A monitor watches one kind of source and emits findings. It never decides and never
exits; stopping it is cancelling its `run` task.
"""

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from watcher.types import Finding

Emit = Callable[[Finding], None]
"""Hand a finding to the policy. Never blocks; the receiver counts what it has to drop."""


class Monitor(Protocol):
    name: str
    """Short, stable name: the finding's source and the label in metrics and /status."""
    ready: asyncio.Event
    """Set once the monitor watches what it was configured to watch."""

    async def run(self, emit: Emit) -> None:
        """Watch until cancelled."""

    def healthy(self) -> tuple[bool, str]:
        """Whether it still sees its source, and a word on why not."""

    def up(self) -> bool:
        """Its source answered at the last look (`watcher_monitor_up`): files followed,
        probes answering, a GPU poll that succeeded, the API read. Unlike `healthy`, a
        source that fails is not the monitor's fault: it never fails /healthz."""

    def status(self) -> dict[str, Any]:
        """A JSON-able picture for /status."""

    def counters(self) -> dict[str, float]:
        """Monotonic counters for /metrics (bytes, lines...)."""
