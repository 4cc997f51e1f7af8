"""The NVML backend: nvidia-ml-py (`pynvml`) in this process, the cheapest way to poll.

The binding is passed in as a module object (tests hand in a fake). NVML is initialised
once and opens only this Pod's GPUs (by UUID when known). A poll reads each GPU in its own
daemon thread under a deadline (`call_with_deadline`): a sick GPU can block NVML for
minutes. A GPU whose earlier read is still blocked is reported timed out and not read
again until that read returns, so hung threads never pile up. Xid events: `listen`.
"""

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from watcher.blocking import call_with_deadline
from watcher.gpu.backends import OnEvent
from watcher.gpu.backends.nvml_events import XidWatcher
from watcher.gpu.model import (
    GpuId,
    GpuReading,
    Recovery,
    Snapshot,
    ToolFailure,
    ToolProblem,
    normalize_bus_id,
)
from watcher.gpu.nvml_codes import (
    ABSENT,
    GPU_IS_LOST,
    GPU_NOT_FOUND,
    NOT_FOUND,
    RECOVERY,
    REINIT,
    RESET_REQUIRED,
    THERMAL,
    TOOL_PROBLEMS,
    UNKNOWN,
    VALUE_TYPES,
)

T = TypeVar("T")
SOURCE = "nvml"

__all__ = ["GPU_IS_LOST", "NvmlBackend", "NvmlFault"]
"""The NVML codes live in `watcher.gpu.nvml_codes`; tests take GPU_IS_LOST from here."""


class NvmlFault(Exception):
    """An NVML error that is not about one GPU's state (driver gone, a deadline passed)."""

    def __init__(self, problem: ToolProblem, detail: str, *, reinit: bool = False) -> None:
        super().__init__(detail)
        self.problem = problem
        self.reinit = reinit


@dataclass
class _Gpu:
    id: GpuId
    handle: Any
    name: str | None = None
    busy: threading.Event = field(default_factory=threading.Event)
    """Set while a read runs in its thread (it may outlive its deadline)."""


class NvmlBackend:
    """Polls this Pod's GPUs through the NVML binding ``nvml`` (the `pynvml` module)."""

    name = SOURCE

    def __init__(
        self, nvml: Any, uuids: Sequence[str] | None, timeout: float, event_wait_ms: int = 5000
    ) -> None:
        self._nvml = nvml
        self._uuids = tuple(uuids) if uuids else None
        self._timeout = timeout
        self._event_wait_ms = event_wait_ms
        self._gpus: list[_Gpu] | None = None
        self._missing: list[ToolFailure] = []
        self._opening = threading.Event()
        self._initialized = False
        self._on_event: OnEvent | None = None
        self.events: XidWatcher | None = None

    async def poll(self) -> Snapshot:
        try:
            gpus = await self._open()
        except NvmlFault as fault:
            if fault.reinit:
                self._initialized = False
            return _failed(fault.problem, str(fault))
        if not gpus and not self._missing:
            return _failed(ToolProblem.NO_DEVICES, "NVML sees no GPU (nvmlDeviceGetCount: 0)")
        results = await asyncio.gather(*(self._read(gpu) for gpu in gpus))
        readings = tuple(r for r in results if isinstance(r, GpuReading))
        failures = tuple(r for r in results if isinstance(r, ToolFailure))
        return Snapshot(SOURCE, readings, (*self._missing, *failures))

    async def _open(self) -> list[_Gpu]:
        """The GPUs' handles, from a fresh nvmlInit when needed."""
        if self._gpus is not None:
            return self._gpus
        if self._opening.is_set():
            raise NvmlFault(ToolProblem.TIMED_OUT, "nvmlInit is still blocked")
        gpus, self._missing = await self._blocking(self._opening, self._init_and_open)
        self._gpus = gpus
        self._start_events()
        return gpus

    async def _read(self, gpu: _Gpu) -> GpuReading | ToolFailure:
        if gpu.busy.is_set():
            detail = f"an NVML read of {gpu.id.label()} is still blocked"
            return ToolFailure(ToolProblem.TIMED_OUT, detail, gpu.id)
        try:
            return await self._blocking(gpu.busy, lambda: self._sample(gpu))
        except NvmlFault as fault:
            if fault.reinit:
                self._forget()
            return ToolFailure(fault.problem, str(fault), gpu.id)

    async def _blocking(self, busy: threading.Event, fn: Callable[[], T]) -> T:
        """``fn()`` in a daemon thread with the deadline; ``busy`` is set while it runs."""

        def work() -> T:
            try:
                return self._guard(fn)
            finally:
                busy.clear()

        busy.set()
        try:
            return await call_with_deadline(work, self._timeout, "nvml")
        except TimeoutError:
            detail = f"NVML did not answer within {self._timeout:g}s"
            raise NvmlFault(ToolProblem.TIMED_OUT, detail) from None

    def _guard(self, fn: Callable[[], T]) -> T:
        """NVML errors that are not about one GPU's state become NvmlFault."""
        try:
            return fn()
        except self._nvml.NVMLError as exc:
            code = getattr(exc, "value", None)
            problem = TOOL_PROBLEMS.get(code or 0, ToolProblem.FAILED)
            raise NvmlFault(problem, f"NVML error {code}: {exc}", reinit=code in REINIT) from None

    def _forget(self) -> None:
        """The driver went away: open everything again from nvmlInit on the next poll."""
        self._gpus, self._initialized = None, False
        if self.events is not None:
            self.events.request_stop()

    def _init_and_open(self) -> tuple[list[_Gpu], list[ToolFailure]]:
        nvml = self._nvml
        if not self._initialized:
            nvml.nvmlInit()
            self._initialized = True
        wanted: list[tuple[GpuId, Callable[[], Any]]]
        if self._uuids is not None:
            by_uuid = nvml.nvmlDeviceGetHandleByUUID
            wanted = [(GpuId(uuid=u), functools.partial(by_uuid, u)) for u in self._uuids]
        else:
            by_index = nvml.nvmlDeviceGetHandleByIndex
            count = int(nvml.nvmlDeviceGetCount())
            wanted = [(GpuId(index=i), functools.partial(by_index, i)) for i in range(count)]
        gpus: list[_Gpu] = []
        missing: list[ToolFailure] = []
        for known, get in wanted:
            self._handle(get, known, gpus, missing)
        return gpus, missing

    def _handle(
        self, get: Callable[[], Any], known: GpuId, gpus: list[_Gpu], missing: list[ToolFailure]
    ) -> None:
        nvml = self._nvml
        try:
            handle = get()
            uuid = _text(nvml.nvmlDeviceGetUUID(handle))
            bus = _text(nvml.nvmlDeviceGetPciInfo(handle).busId)
            name = self._optional(lambda: _text(nvml.nvmlDeviceGetName(handle)), [], "name")
        except nvml.NVMLError as exc:
            code = getattr(exc, "value", None)
            if code in (GPU_IS_LOST, UNKNOWN):  # "Unable to determine the device handle"
                gpus.append(_Gpu(known, None))
            elif code in (NOT_FOUND, GPU_NOT_FOUND, 2):
                text = f"{known.label()} is not visible to NVML here ({exc})"
                missing.append(ToolFailure(ToolProblem.NO_DEVICES, text, known))
            else:
                raise
            return
        gpu_id = GpuId(uuid=uuid, bus_id=normalize_bus_id(bus), index=known.index)
        gpus.append(_Gpu(gpu_id, handle, name))

    def _sample(self, gpu: _Gpu) -> GpuReading:
        if gpu.handle is None:
            return GpuReading(gpu.id, gpu.name, lost=True)
        try:
            return self._fields(gpu)
        except self._nvml.NVMLError as exc:
            code = getattr(exc, "value", None)
            if code == GPU_IS_LOST:
                return GpuReading(gpu.id, gpu.name, lost=True)
            if code == RESET_REQUIRED:
                return GpuReading(gpu.id, gpu.name, reset_required=True)
            raise

    def _fields(self, gpu: _Gpu) -> GpuReading:
        nvml, handle, odd = self._nvml, gpu.handle, list[str]()
        # NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1, NVML_VOLATILE_ECC = 0
        ecc = self._optional(lambda: nvml.nvmlDeviceGetTotalEccErrors(handle, 1, 0), odd, "ecc")
        rows = self._optional(lambda: nvml.nvmlDeviceGetRemappedRows(handle), odd, "remapped_rows")
        pages = self._optional(
            lambda: nvml.nvmlDeviceGetRetiredPagesPendingStatus(handle), odd, "retired_pages"
        )
        reasons = self._optional(lambda: _clock_reasons(nvml, handle), odd, "clocks_event_reasons")
        return GpuReading(
            gpu.id,
            gpu.name,
            ecc_uncorrected_volatile=None if ecc is None else int(ecc),
            remapped_rows_pending=None if rows is None else bool(rows[2]),
            remapped_rows_failure=None if rows is None else bool(rows[3]),
            retired_pages_pending=None if pages is None else bool(pages),
            recovery_action=self._optional(lambda: _recovery(nvml, handle), odd, "recovery"),
            thermal_slowdown=None if reasons is None else bool(int(reasons) & THERMAL),
            odd_fields=tuple(odd),
        )

    def _optional(self, call: Callable[[], T], odd: list[str], label: str) -> T | None:
        """``call()``, or None where the field is not offered; odd errors are noted."""
        try:
            return call()
        except AttributeError:  # an older binding without this function or constant
            return None
        except self._nvml.NVMLError as exc:
            code = getattr(exc, "value", None)
            if code in ABSENT:
                return None
            if code in (UNKNOWN, NOT_FOUND):
                odd.append(f"{label} ({exc})")
                return None
            raise

    def listen(self, on_event: OnEvent) -> None:
        """Deliver each Xid (and double-bit ECC) event to ``on_event`` on this loop."""
        self._on_event = on_event
        self._start_events()

    def _start_events(self) -> None:
        if self._on_event is None or self._gpus is None:
            return
        if self.events is not None and self.events.alive():
            return
        handles = {g.id.uuid: (g.id, g.handle) for g in self._gpus if g.handle is not None}
        self.events = XidWatcher(self._nvml, handles, self._on_event, self._event_wait_ms)
        self.events.start(asyncio.get_running_loop())

    def status(self) -> dict[str, Any]:
        return {"events": None if self.events is None else self.events.status()}

    async def close(self) -> None:
        ended = True
        if self.events is not None:
            ended = await self.events.stop(self._timeout)
        if self._initialized and ended:
            with contextlib.suppress(TimeoutError, self._nvml.NVMLError):
                await call_with_deadline(self._nvml.nvmlShutdown, self._timeout, "nvml-shutdown")
            self._initialized = False


def _clock_reasons(nvml: Any, handle: Any) -> int:
    get = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
    if get is None:  # bindings before 12.535
        get = nvml.nvmlDeviceGetCurrentClocksThrottleReasons
    return int(get(handle))


def _recovery(nvml: Any, handle: Any) -> Recovery | None:
    (value,) = nvml.nvmlDeviceGetFieldValues(handle, [nvml.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION])
    if value.nvmlReturn != 0:  # NVML_SUCCESS; NOT_SUPPORTED before the 570 drivers
        return None
    member = VALUE_TYPES[value.valueType] if 0 <= value.valueType < len(VALUE_TYPES) else "uiVal"
    action = int(getattr(value.value, member))
    return RECOVERY[action] if 0 <= action < len(RECOVERY) else Recovery.OTHER


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _failed(problem: ToolProblem, detail: str) -> Snapshot:
    return Snapshot(SOURCE, failures=(ToolFailure(problem, detail),))
