"""NVML's answer as the GPU relay reports it (`watcher/launcher/gpu_read.py`) -> Snapshot.

The relay reads NVML in the trainer's container and judges nothing: per GPU the raw
values and, where a call failed, NVML's error code and text. Here they get the meaning
the in-process NVML backend gives them (`watcher.gpu.nvml_codes`): a handle that cannot
be had (GPU_IS_LOST, UNKNOWN) is a lost GPU, GPU_IS_LOST or RESET_REQUIRED from a value
call is the GPU's state, a field the GPU does not offer is unknown, an error of NVML
itself (driver not loaded...) is a tool failure. Never raises.
"""

from typing import Any, Final

from watcher.gpu.formats.common import guarded
from watcher.gpu.model import GpuId, GpuReading, Snapshot, ToolFailure, ToolProblem
from watcher.gpu.model import normalize_bus_id as bus
from watcher.gpu.nvml_codes import (
    ABSENT,
    GPU_IS_LOST,
    GPU_NOT_FOUND,
    NOT_FOUND,
    RESET_REQUIRED,
    THERMAL,
    TOOL_PROBLEMS,
    UNKNOWN,
    recovery_action,
)

SOURCE: Final = "relay"


def parse_relay_nvml(poll: dict[str, Any]) -> Snapshot:
    return _parse(poll)[0]


@guarded(SOURCE)
def _parse(poll: dict[str, Any]) -> tuple[Snapshot, dict[str, int]]:
    if poll.get("timed_out"):
        detail = "NVML in the trainer's container did not answer within the deadline"
        if poll.get("blocked"):
            detail = "an earlier NVML read in the trainer's container is still blocked"
        return Snapshot(SOURCE, failures=(ToolFailure(ToolProblem.TIMED_OUT, detail),)), {}
    error = _error(poll.get("error"))
    if error is not None:
        return Snapshot(SOURCE, failures=(_tool_failure(*error, None),)), {}
    gpus = [g for g in poll.get("gpus") or () if isinstance(g, dict)]
    if not gpus:
        failure = ToolFailure(ToolProblem.NO_DEVICES, "NVML sees no GPU (nvmlDeviceGetCount: 0)")
        return Snapshot(SOURCE, failures=(failure,)), {}
    readings: list[GpuReading] = []
    failures: list[ToolFailure] = []
    for gpu in gpus:
        found = _gpu(gpu)
        if isinstance(found, GpuReading):
            readings.append(found)
        else:
            failures.append(found)
    return Snapshot(SOURCE, tuple(readings), tuple(failures)), {}


def _gpu(gpu: dict[str, Any]) -> GpuReading | ToolFailure:
    index = gpu.get("index") if isinstance(gpu.get("index"), int) else None
    gpu_id = GpuId(_str(gpu.get("uuid")), bus(_str(gpu.get("bus_id"))), index)
    handle_error = _error(gpu.get("error"))
    if handle_error is not None:
        return _no_handle(gpu_id, *handle_error)
    name = _str(gpu.get("name"))
    errors = {k: e for k, v in (gpu.get("errors") or {}).items() if (e := _error(v)) is not None}
    codes = {code for code, _ in errors.values()}
    if codes & {GPU_IS_LOST, RESET_REQUIRED}:
        lost = GPU_IS_LOST in codes
        return GpuReading(gpu_id, name, lost=lost, reset_required=not lost)
    fatal = [(c, t) for c, t in errors.values() if c in TOOL_PROBLEMS]
    if fatal:
        return _tool_failure(*fatal[0], gpu_id)
    odd = tuple(f"{key} ({text})" for key, (code, text) in errors.items() if code not in ABSENT)
    rows = gpu.get("rows") if isinstance(gpu.get("rows"), list) else None
    reasons, recovery = _int(gpu.get("reasons")), _int(gpu.get("recovery"))
    pages = _int(gpu.get("pages_pending"))
    return GpuReading(
        gpu_id,
        name,
        ecc_uncorrected_volatile=_int(gpu.get("ecc")),
        remapped_rows_pending=None if rows is None or len(rows) < 4 else bool(rows[2]),
        remapped_rows_failure=None if rows is None or len(rows) < 4 else bool(rows[3]),
        retired_pages_pending=None if pages is None else bool(pages),
        recovery_action=None if recovery is None else recovery_action(recovery),
        thermal_slowdown=None if reasons is None else bool(reasons & THERMAL),
        odd_fields=odd,
    )


def _no_handle(gpu_id: GpuId, code: int | None, text: str) -> GpuReading | ToolFailure:
    if code in (GPU_IS_LOST, UNKNOWN):  # "Unable to determine the device handle"
        return GpuReading(gpu_id, lost=True)
    if code in (NOT_FOUND, GPU_NOT_FOUND):
        return ToolFailure(ToolProblem.NO_DEVICES, f"{gpu_id.label()}: {text}", gpu_id)
    return _tool_failure(code, text, gpu_id)


def _tool_failure(code: int | None, text: str, gpu: GpuId | None) -> ToolFailure:
    problem = TOOL_PROBLEMS.get(code or 0, ToolProblem.FAILED)
    return ToolFailure(problem, f"NVML error {code}: {text}", gpu)


def _error(value: Any) -> tuple[int | None, str] | None:
    """[code, text] as the relay writes an NVML error, or None."""
    if not isinstance(value, list) or len(value) != 2:
        return None
    code = value[0] if isinstance(value[0], int) else None
    return code, str(value[1])[:300]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None
