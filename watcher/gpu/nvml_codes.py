"""NVML's return codes and values, as the NVML backend and the GPU relay's NVML readings
use them (nvml.h; the binding raises NVMLError subclasses whose `.value` is the code)."""

from watcher.gpu.model import Recovery, ToolProblem

UNINITIALIZED, NOT_SUPPORTED, NO_PERMISSION, NOT_FOUND = 1, 3, 4, 6
DRIVER_NOT_LOADED, TIMEOUT, LIBRARY_NOT_FOUND, FUNCTION_NOT_FOUND = 9, 10, 12, 13
GPU_IS_LOST, RESET_REQUIRED, LIB_RM_VERSION_MISMATCH = 15, 16, 18
DEPRECATED, GPU_NOT_FOUND, UNKNOWN = 26, 28, 999

ABSENT = frozenset({NOT_SUPPORTED, NO_PERMISSION, FUNCTION_NOT_FOUND, DEPRECATED})
"""A field this GPU, driver or container does not offer: None, not a fault."""
TOOL_PROBLEMS = {
    DRIVER_NOT_LOADED: ToolProblem.DRIVER_NOT_LOADED,
    LIBRARY_NOT_FOUND: ToolProblem.LIBRARY_NOT_FOUND,
    LIB_RM_VERSION_MISMATCH: ToolProblem.VERSION_MISMATCH,
    TIMEOUT: ToolProblem.TIMED_OUT,
    GPU_IS_LOST: ToolProblem.GPU_LOST,
    GPU_NOT_FOUND: ToolProblem.NO_DEVICES,
}
"""Errors of NVML itself rather than of one GPU; any other is FAILED."""
RECOVERY: tuple[Recovery, ...] = (Recovery.NONE, Recovery.GPU_RESET, Recovery.NODE_REBOOT)
RECOVERY += (Recovery.DRAIN_P2P, Recovery.DRAIN_AND_RESET)
"""NVML_GPU_RECOVERY_ACTION_* 0..4; 5 (IMEX domain), 6 (bus reset), 7 (system reboot): OTHER."""
THERMAL = 0x20 | 0x40
"""Clocks event reasons SwThermalSlowdown | HwThermalSlowdown."""
VALUE_TYPES = ("dVal", "uiVal", "ulVal", "ullVal", "sllVal", "siVal", "usVal")
"""nvmlValue_t members by NVML_VALUE_TYPE_* (0..6)."""
REINIT = frozenset({UNINITIALIZED, DRIVER_NOT_LOADED, LIBRARY_NOT_FOUND, LIB_RM_VERSION_MISMATCH})
"""After these, NVML is opened again (nvmlInit, handles) on the next poll."""


def recovery_action(value: int) -> Recovery:
    """NVML_GPU_RECOVERY_ACTION_* as a `Recovery`."""
    return RECOVERY[value] if 0 <= value < len(RECOVERY) else Recovery.OTHER
