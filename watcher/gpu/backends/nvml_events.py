"""NVML Xid events: an event set on this Pod's GPUs, waited on in a daemon thread.

The thread registers XidCriticalError (and double-bit ECC and recovery-action events,
where the GPU supports them) and loops on `nvmlEventSetWait_v2(set, wait_ms)`, which
raises NVMLError_Timeout when nothing happened. Each event goes to the loop with
`call_soon_threadsafe` as a `GpuReading` of that GPU: `xid` set for an Xid event, None
for the others (they only ask for an early poll). Every event is delivered, two equal
Xids in a row included: the monitor turns each into a finding of its own, not through
the classifier's "changed since the last reading" rule.
"""

import asyncio
import contextlib
import threading
from typing import Any

from watcher.blocking import call_with_deadline
from watcher.gpu.backends import OnEvent
from watcher.gpu.model import GpuId, GpuReading

XID_CRITICAL, DOUBLE_BIT_ECC, RECOVERY_ACTION = 0x8, 0x2, 0x8000
"""nvmlEventType* bits (pynvml); recovery-action events exist from the 570 drivers."""
WANTED = XID_CRITICAL | DOUBLE_BIT_ECC | RECOVERY_ACTION
TIMEOUT, NOT_SUPPORTED = 10, 3


class XidWatcher:
    """One event set and the thread that waits on it."""

    def __init__(
        self,
        nvml: Any,
        gpus: dict[str | None, tuple[GpuId, Any]],
        on_event: OnEvent,
        wait_ms: int,
    ) -> None:
        self._nvml = nvml
        self._gpus = gpus
        """GPU id and handle by UUID."""
        self._on_event = on_event
        self._wait_ms = wait_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.registered: list[str] = []
        """Labels of the GPUs whose events are watched."""
        self.delivered = 0
        self.error: str | None = None
        """Why the thread stopped watching, if it did on its own."""

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._thread = threading.Thread(
            target=self._watch, args=(loop,), name="nvml-events", daemon=True
        )
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> dict[str, Any]:
        return {
            "watching": self.alive(),
            "gpus": list(self.registered),
            "delivered": self.delivered,
            "error": self.error,
        }

    def request_stop(self) -> None:
        self._stop.set()

    async def stop(self, limit: float) -> bool:
        """Ask the thread to end and wait for it (at most ``limit`` s); True if it ended."""
        self._stop.set()
        thread = self._thread
        if thread is None:
            return True
        with contextlib.suppress(TimeoutError):
            await call_with_deadline(lambda: thread.join(limit), limit + 0.5, "nvml-events-join")
        return not thread.is_alive()

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        nvml = self._nvml
        try:
            events = nvml.nvmlEventSetCreate()
        except nvml.NVMLError as exc:
            self.error = f"cannot create an NVML event set: {exc}"
            return
        try:
            self._register(events)
            if self.registered:
                self._loop(events, loop)
            else:
                self.error = "no GPU here supports Xid events"
        except nvml.NVMLError as exc:
            self.error = f"NVML events stopped: {exc}"
            self._deliver(loop, None)  # something broke: poll now
        finally:
            with contextlib.suppress(nvml.NVMLError):
                nvml.nvmlEventSetFree(events)

    def _register(self, events: Any) -> None:
        nvml = self._nvml
        for gpu_id, handle in self._gpus.values():
            try:
                mask = int(nvml.nvmlDeviceGetSupportedEventTypes(handle)) & WANTED
                if mask:
                    nvml.nvmlDeviceRegisterEvents(handle, mask, events)
                    self.registered.append(gpu_id.label())
            except nvml.NVMLError as exc:
                if getattr(exc, "value", None) != NOT_SUPPORTED:
                    raise

    def _loop(self, events: Any, loop: asyncio.AbstractEventLoop) -> None:
        nvml = self._nvml
        while not self._stop.is_set():
            try:
                data = nvml.nvmlEventSetWait_v2(events, self._wait_ms)
            except nvml.NVMLError as exc:
                if getattr(exc, "value", None) == TIMEOUT:
                    continue
                raise
            reading = self._reading(data)
            if reading is not None and not self._stop.is_set():
                self._deliver(loop, reading)

    def _reading(self, data: Any) -> GpuReading | None:
        """The event as a reading of one of our GPUs; None: not ours or unknown."""
        nvml = self._nvml
        try:
            uuid = nvml.nvmlDeviceGetUUID(data.device)
        except nvml.NVMLError:
            return None
        uuid = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
        known = self._gpus.get(uuid)
        if known is None:
            return None
        xid = int(data.eventData) if int(data.eventType) & XID_CRITICAL else None
        return GpuReading(known[0], xid=xid)

    def _deliver(self, loop: asyncio.AbstractEventLoop, reading: GpuReading | None) -> None:
        self.delivered += reading is not None
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody listens any more
            loop.call_soon_threadsafe(self._on_event, reading)
