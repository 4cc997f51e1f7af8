"""A fake `pynvml` (nvidia-ml-py) module: the calls the NVML backend makes, behaving as
documented (`pynvml.py` of the nvidia-ml-py 13.615.71 wheel, nvml.h).

Errors are `NVMLError` subclasses named and numbered as the binding generates them
(`NVMLError_GpuIsLost`, `.value == 15`). A GPU can be lost, need a reset, refuse a
field, or hang (every call blocks until `release()`); the driver can go away; event
waits time out (raising `NVMLError_Timeout`) until `xid()` queues an event.
"""

import queue
import threading
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

NVML_FI_DEV_GET_GPU_RECOVERY_ACTION = 230
NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC = 1, 0
nvmlEventTypeDoubleBitEccError, nvmlEventTypeXidCriticalError = 0x2, 0x8
HANG_LIMIT = 30.0
"""A hung call gives up after this long, so a broken test cannot hang the suite."""

CODES = {
    "Uninitialized": 1,
    "NotSupported": 3,
    "NoPermission": 4,
    "NotFound": 6,
    "DriverNotLoaded": 9,
    "Timeout": 10,
    "LibraryNotFound": 12,
    "FunctionNotFound": 13,
    "GpuIsLost": 15,
    "ResetRequired": 16,
    "LibRmVersionMismatch": 18,
    "Unknown": 999,
}
TEXT = {
    3: "Not Supported",
    9: "Driver Not Loaded",
    10: "Timeout",
    12: "NVML Shared Library Not Found",
    15: "GPU is lost",
    16: "GPU requires restart",
    18: "RM has detected an NVML/RM version mismatch.",
    999: "Unknown Error",
}


class NVMLError(Exception):
    value = 0

    def __str__(self) -> str:
        return TEXT.get(self.value, f"NVML error {self.value}")


ERRORS: dict[int, type[NVMLError]] = {}
for _name, _code in CODES.items():
    ERRORS[_code] = type(f"NVMLError_{_name}", (NVMLError,), {"value": _code})


def error(code: int) -> NVMLError:
    return ERRORS[code]()


@dataclass
class FakeGpu:
    uuid: str
    bus: str
    """As NVML prints it: `00000000:18:00.0` (bytes in the real struct)."""
    name: str = "NVIDIA H100 80GB HBM3"
    ecc: int = 0
    remapped: tuple[int, int, int, int] = (0, 0, 0, 0)
    retired_pending: int | None = None
    """None: NOT_SUPPORTED, as on HBM parts."""
    reasons: int = 0x1
    recovery: int | None = 0
    """None: the field is not supported (drivers before 570)."""
    failing: int | None = None
    """Every call about this GPU raises this NVML error code."""
    failing_fields: dict[str, int] = field(default_factory=dict)
    """Function name -> error code raised by just that call."""
    hung: threading.Event | None = None
    events: int = nvmlEventTypeXidCriticalError | nvmlEventTypeDoubleBitEccError
    calls: int = 0


class FakeNvml:
    """Use an instance where the `pynvml` module is expected."""

    NVMLError = NVMLError
    NVML_FI_DEV_GET_GPU_RECOVERY_ACTION = NVML_FI_DEV_GET_GPU_RECOVERY_ACTION
    NVML_MEMORY_ERROR_TYPE_UNCORRECTED = NVML_MEMORY_ERROR_TYPE_UNCORRECTED
    NVML_VOLATILE_ECC = NVML_VOLATILE_ECC

    def __init__(self, gpus: list[FakeGpu]) -> None:
        self.gpus = gpus
        self.init_error: int | None = None
        self.init_hung: threading.Event | None = None
        self.driver_error: int | None = None
        """Once set, every device call raises it (the driver went away)."""
        self.wait_error: int | None = None
        self.inits = self.shutdowns = self.event_sets_freed = 0
        self._events: queue.Queue[tuple[FakeGpu, int, int]] = queue.Queue()
        self.registered: list[str] = []
        self.NVMLError_Timeout = ERRORS[10]
        for code, cls in ERRORS.items():
            setattr(self, cls.__name__, cls)
            del code

    # -- test controls -----------------------------------------------------------------

    def hang(self, gpu: FakeGpu) -> threading.Event:
        gpu.hung = threading.Event()
        return gpu.hung

    def xid(self, gpu: FakeGpu, xid: int) -> None:
        self._events.put((gpu, nvmlEventTypeXidCriticalError, xid))

    def dbe(self, gpu: FakeGpu) -> None:
        self._events.put((gpu, nvmlEventTypeDoubleBitEccError, 0))

    # -- the binding -------------------------------------------------------------------

    def nvmlInit(self) -> None:
        if self.init_hung is not None:
            self.init_hung.wait(HANG_LIMIT)
        if self.init_error is not None:
            raise error(self.init_error)
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        return self._use(self.gpus[index])

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> FakeGpu:
        for gpu in self.gpus:
            if gpu.uuid == uuid:
                return self._use(gpu)
        raise error(6)

    def nvmlDeviceGetUUID(self, handle: FakeGpu) -> str:
        return self._use(handle).uuid

    def nvmlDeviceGetPciInfo(self, handle: FakeGpu) -> Any:
        return SimpleNamespace(busId=self._use(handle).bus.encode())

    def nvmlDeviceGetName(self, handle: FakeGpu) -> str:
        return self._use(handle).name

    def nvmlDeviceGetTotalEccErrors(self, handle: FakeGpu, kind: int, counter: int) -> int:
        assert (kind, counter) == (NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC)
        return self._use(handle, "ecc").ecc

    def nvmlDeviceGetRemappedRows(self, handle: FakeGpu) -> tuple[int, int, int, int]:
        return self._use(handle, "remapped").remapped

    def nvmlDeviceGetRetiredPagesPendingStatus(self, handle: FakeGpu) -> int:
        gpu = self._use(handle, "retired")
        if gpu.retired_pending is None:
            raise error(3)
        return gpu.retired_pending

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: FakeGpu) -> int:
        return self._use(handle, "reasons").reasons

    def nvmlDeviceGetFieldValues(self, handle: FakeGpu, ids: list[int]) -> list[Any]:
        gpu = self._use(handle, "fields")
        assert ids == [NVML_FI_DEV_GET_GPU_RECOVERY_ACTION]
        supported = gpu.recovery is not None
        value = SimpleNamespace(uiVal=gpu.recovery or 0)
        return [SimpleNamespace(nvmlReturn=0 if supported else 3, valueType=1, value=value)]

    def nvmlEventSetCreate(self) -> object:
        return object()

    def nvmlDeviceGetSupportedEventTypes(self, handle: FakeGpu) -> int:
        return self._use(handle).events

    def nvmlDeviceRegisterEvents(self, handle: FakeGpu, mask: int, events: object) -> None:
        self.registered.append(f"{handle.uuid} {mask:#x}")

    def nvmlEventSetWait_v2(self, events: object, timeout_ms: int) -> Any:
        if self.wait_error is not None:
            raise error(self.wait_error)
        try:
            gpu, kind, data = self._events.get(timeout=timeout_ms / 1000)
        except queue.Empty:
            raise error(10) from None
        return SimpleNamespace(device=gpu, eventType=kind, eventData=data)

    def nvmlEventSetFree(self, events: object) -> None:
        self.event_sets_freed += 1

    def _use(self, gpu: FakeGpu, call: str = "") -> FakeGpu:
        gpu.calls += 1
        if gpu.hung is not None:
            gpu.hung.wait(HANG_LIMIT)
        for code in (self.driver_error, gpu.failing, gpu.failing_fields.get(call)):
            if code is not None:
                raise error(code)
        return gpu


def h100s(count: int) -> list[FakeGpu]:
    return [
        FakeGpu(f"GPU-{i:08x}-aaaa-bbbb-cccc-{i:012x}", f"00000000:{0x18 + 0x10 * i:02X}:00.0")
        for i in range(count)
    ]
