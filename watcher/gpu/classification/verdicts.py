"""What one GPU reading, one change between two readings, or one tool failure means.

Hardware faults are those an in-place restart cannot help: the same GPUs stay attached.
Sources: NVIDIA's "Error Recovery and Response Flags"
(https://docs.nvidia.com/deploy/a100-gpu-mem-error-mgmt/error-recovery-and-response-flags.html)
for the recovery action and the row-remap flags, `nvidia-smi --help-query-gpu` for the
fields, nvidia-smi(1) for the exit codes, DCGM's health results (PASS, WARN, FAIL).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from watcher.gpu.model import GpuReading, Recovery, ToolProblem
from watcher.gpu.xids import xid_class, xid_message
from watcher.types import FaultClass, Severity

HW, WARN, FATAL = FaultClass.HARDWARE, Severity.WARNING, Severity.FATAL
INFRA = FaultClass.INFRASTRUCTURE


@dataclass(frozen=True)
class Verdict:
    reason: str
    severity: Severity
    fault_class: FaultClass
    message: str


_RECOVERY: Final = {
    Recovery.GPU_RESET: "GpuResetRequired",
    Recovery.DRAIN_AND_RESET: "GpuResetRequired",
    Recovery.NODE_REBOOT: "GpuNodeRebootRequired",
    Recovery.OTHER: "GpuRecoveryRequired",
}
TOOL: Final = {
    ToolProblem.GPU_LOST: Verdict("GpuLost", FATAL, HW, "a GPU fell off the bus"),
    ToolProblem.DRIVER_NOT_LOADED: Verdict(
        "GpuDriverUnavailable", WARN, INFRA,
        "the NVIDIA driver cannot be reached from this container",
    ),
    ToolProblem.LIBRARY_NOT_FOUND: Verdict(
        "GpuToolUnavailable", WARN, INFRA, "NVML is not in this container"
    ),
    ToolProblem.VERSION_MISMATCH: Verdict(
        "GpuDriverUnavailable", WARN, INFRA,
        "the NVML library and the kernel driver versions differ",
    ),
    ToolProblem.NO_DEVICES: Verdict(
        "GpuNotVisible", WARN, INFRA, "no GPU is visible to this container"
    ),
    ToolProblem.NOT_LISTED: Verdict(
        "GpuNotVisible", WARN, INFRA, "one of this Pod's GPUs is not among those the source lists"
    ),
    ToolProblem.NO_BACKEND: Verdict(
        "GpuMonitorUnavailable", WARN, INFRA,
        "the Pod has GPUs but no GPU backend works in this container",
    ),
    ToolProblem.RELAY_DOWN: Verdict(
        "GpuRelayDown", WARN, INFRA,
        "the GPU relay in the trainer's container is not running: its GPUs are not watched",
    ),
    ToolProblem.RELAY_STALE: Verdict(
        "GpuRelayStale", WARN, INFRA,
        "the GPU relay in the trainer's container stopped reporting (stuck in the driver?)",
    ),
    ToolProblem.TIMED_OUT: Verdict(
        "GpuToolTimedOut", WARN, HW, "the GPU query did not answer in time (a wedged GPU?)"
    ),
    ToolProblem.FAILED: Verdict("GpuToolFailed", WARN, INFRA, "the GPU query failed"),
}  # fmt: skip
"""One poll that failed, on its own: a warning (one capture cannot tell a driver gone from
a container never given GPUs), except a GPU the tool itself says fell off the bus."""

UNREACHABLE: Final = frozenset({ToolProblem.DRIVER_NOT_LOADED, ToolProblem.NO_DEVICES})
"""Failures that mean the GPUs are gone once the same source has read them: nvidia-smi's
"couldn't communicate with the NVIDIA driver" (exit 9) or "No devices were found" (exit
6), NVML's DriverNotLoaded or NotFound."""


UNREACHABLE_REASON: Final = "GpuUnreachable"


def unreachable(gpus: list[str]) -> Verdict:
    """GPUs this source read before and cannot reach now: the GPU or its driver is gone."""
    text = f"{', '.join(gpus)} answered before and cannot be reached now"
    return Verdict(UNREACHABLE_REASON, FATAL, HW, text)


def conditions(reading: GpuReading) -> Iterator[Verdict]:
    """States that are faults (or warnings) for as long as they last."""
    yield from _broken(reading)
    yield from _pending(reading)
    yield from _advisories(reading)


def _broken(reading: GpuReading) -> Iterator[Verdict]:
    if reading.lost:
        yield Verdict("GpuLost", FATAL, HW, "the GPU is lost (fell off the bus)")
    if reading.reset_required:
        yield Verdict("GpuResetRequired", FATAL, HW, "the GPU requires a reset")
    action = reading.recovery_action
    if action in _RECOVERY:
        text = f"the driver asks for recovery action {action}"
        yield Verdict(_RECOVERY[action], FATAL, HW, text)
    if reading.remapped_rows_failure:
        yield Verdict("GpuRowRemapFailure", FATAL, HW, "a row remapping failed")


def _pending(reading: GpuReading) -> Iterator[Verdict]:
    """Repairs that apply at the next GPU reset. NVIDIA: with a remap pending, "unaffected
    applications can continue running" and new ones start; retired pages pending can still
    be allocated (nvidia-smi --help-query-gpu); DCGM warns. The error that led to them is
    a fault of its own (an uncorrectable ECC count, Xid 48, 94 or 95)."""
    if reading.remapped_rows_pending:
        text = "a row remap is pending: it applies at the next GPU reset"
        yield Verdict("GpuRowRemapPending", WARN, HW, text)
    if reading.retired_pages_pending:
        text = "a page retirement is pending: it applies at the next GPU reset"
        yield Verdict("GpuPageRetirementPending", WARN, HW, text)


def _advisories(reading: GpuReading) -> Iterator[Verdict]:
    if reading.recovery_action is Recovery.DRAIN_P2P:
        yield Verdict("GpuDrainP2P", WARN, HW, "the driver asks to drain peer-to-peer traffic")
    for system, state in reading.health.items():
        if state.lower() in ("failure", "fail"):
            yield Verdict("DcgmHealthFailure", FATAL, HW, f"DCGM health: {system} failed")
        elif state.lower() in ("warning", "warn"):
            yield Verdict("DcgmHealthWarning", WARN, HW, f"DCGM health: {system} warning")
    if reading.thermal_slowdown:
        text = "clocks slowed down for heat (slower, not broken)"
        yield Verdict("GpuThermalSlowdown", WARN, HW, text)
    for cell in reading.odd_fields:
        yield Verdict("GpuFieldUnreadable", WARN, HW, f"{cell} could not be read")


def changes(before: GpuReading, now: GpuReading) -> Iterator[Verdict]:
    """Counters that moved since ``before``."""
    if _grew(before.ecc_uncorrected_volatile, now.ecc_uncorrected_volatile):
        text = (
            f"uncorrectable ECC errors went from {before.ecc_uncorrected_volatile} to "
            f"{now.ecc_uncorrected_volatile}"
        )
        yield Verdict("GpuUncorrectableEcc", FATAL, HW, text)
    if now.xid is not None and now.xid not in (0, before.xid):
        xid = xid_class(now.xid)
        yield Verdict(xid.reason, xid.severity, xid.fault_class, xid_message(now.xid))
    if _grew(before.pcie_replays, now.pcie_replays):
        text = f"PCIe replays went from {before.pcie_replays} to {now.pcie_replays}"
        yield Verdict("GpuPcieReplays", WARN, HW, text)


def _grew(before: int | None, now: int | None) -> bool:
    return before is not None and now is not None and now > before
