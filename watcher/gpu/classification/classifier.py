"""What GPU readings mean: hardware faults (restarting in place cannot help), faults of
the program, warnings, and a broken tool.

Counters (volatile ECC, PCIe replays, DCGM's last Xid) fire when they move between two
readings; the first reading is only the baseline, so what the previous job left behind
never fires. Conditions (GPU lost, reset
required, remap pending, a recovery action) fire when first seen and again only after
they cleared.
"""

from collections.abc import Iterator
from dataclasses import dataclass

from watcher.gpu.model import GpuReading, Recovery, Snapshot, ToolFailure, ToolProblem
from watcher.gpu.xids import xid_class, xid_message
from watcher.types import FaultClass, Finding, Severity

HW, WARN = FaultClass.HARDWARE, Severity.WARNING


@dataclass(frozen=True)
class Verdict:
    reason: str
    severity: Severity
    fault_class: FaultClass
    message: str


_RECOVERY = {
    Recovery.GPU_RESET: "GpuResetRequired",
    Recovery.DRAIN_AND_RESET: "GpuResetRequired",
    Recovery.NODE_REBOOT: "GpuNodeRebootRequired",
    Recovery.OTHER: "GpuRecoveryRequired",
}
_TOOL = {
    ToolProblem.GPU_LOST: Verdict("GpuLost", Severity.FATAL, HW, "a GPU fell off the bus"),
    ToolProblem.DRIVER_NOT_LOADED: Verdict(
        "GpuDriverUnavailable", WARN, FaultClass.INFRASTRUCTURE,
        "the NVIDIA driver cannot be reached from this container",
    ),
    ToolProblem.LIBRARY_NOT_FOUND: Verdict(
        "GpuToolUnavailable", WARN, FaultClass.INFRASTRUCTURE, "NVML is not in this container"
    ),
    ToolProblem.VERSION_MISMATCH: Verdict(
        "GpuDriverUnavailable", WARN, FaultClass.INFRASTRUCTURE,
        "the NVML library and the kernel driver versions differ",
    ),
    ToolProblem.NO_DEVICES: Verdict(
        "GpuNotVisible", WARN, FaultClass.INFRASTRUCTURE, "no GPU is visible to this container"
    ),
    ToolProblem.TIMED_OUT: Verdict(
        "GpuToolTimedOut", WARN, HW, "the GPU query did not answer in time (a wedged GPU?)"
    ),
    ToolProblem.FAILED: Verdict(
        "GpuToolFailed", WARN, FaultClass.INFRASTRUCTURE, "the GPU query failed"
    ),
}  # fmt: skip


def conditions(reading: GpuReading) -> Iterator[Verdict]:
    """States that are faults (or warnings) for as long as they last."""
    yield from _broken(reading)
    yield from _advisories(reading)


def _broken(reading: GpuReading) -> Iterator[Verdict]:
    if reading.lost:
        yield Verdict("GpuLost", Severity.FATAL, HW, "the GPU is lost (fell off the bus)")
    if reading.reset_required:
        yield Verdict("GpuResetRequired", Severity.FATAL, HW, "the GPU requires a reset")
    action = reading.recovery_action
    if action in _RECOVERY:
        text = f"the driver asks for recovery action {action}"
        yield Verdict(_RECOVERY[action], Severity.FATAL, HW, text)
    if reading.remapped_rows_failure:
        yield Verdict("GpuRowRemapFailure", Severity.FATAL, HW, "a row remapping failed")
    if reading.remapped_rows_pending:
        text = "a row remap is pending: it applies only after a GPU reset"
        yield Verdict("GpuRowRemapPending", Severity.FATAL, HW, text)
    if reading.retired_pages_pending:
        text = "a page retirement is pending: it applies only after a GPU reset"
        yield Verdict("GpuPageRetirementPending", Severity.FATAL, HW, text)


def _advisories(reading: GpuReading) -> Iterator[Verdict]:
    if reading.recovery_action is Recovery.DRAIN_P2P:
        yield Verdict("GpuDrainP2P", WARN, HW, "the driver asks to drain peer-to-peer traffic")
    for system, state in reading.health.items():
        if state.lower() in ("failure", "fail"):
            yield Verdict("DcgmHealthFailure", Severity.FATAL, HW, f"DCGM health: {system} failed")
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
        yield Verdict("GpuUncorrectableEcc", Severity.FATAL, HW, text)
    if now.xid is not None and now.xid not in (0, before.xid):
        xid = xid_class(now.xid)
        yield Verdict(xid.reason, xid.severity, xid.fault_class, xid_message(now.xid))
    if _grew(before.pcie_replays, now.pcie_replays):
        text = f"PCIe replays went from {before.pcie_replays} to {now.pcie_replays}"
        yield Verdict("GpuPcieReplays", WARN, HW, text)


def _grew(before: int | None, now: int | None) -> bool:
    return before is not None and now is not None and now > before


class GpuClassifier:
    """Remembers the first reading of each GPU and which conditions were reported."""

    def __init__(self) -> None:
        self._baseline: dict[str, GpuReading] = {}
        self._active: set[tuple[str, str]] = set()
        """(GPU key or "tool", reason) of conditions reported and still present."""

    def classify(self, snapshot: Snapshot, at: float) -> list[Finding]:
        findings = self._tool_failures(snapshot, at)
        for reading in snapshot.readings:
            key = reading.gpu.key
            before = self._baseline.setdefault(key, reading)
            self._baseline[key] = reading
            verdicts = self._fresh(key, list(conditions(reading))) + list(changes(before, reading))
            findings += [self._finding(snapshot.source, reading, v, at) for v in verdicts]
        return findings

    def _fresh(self, key: str, current: list[Verdict]) -> list[Verdict]:
        """The conditions not reported yet; forget those that cleared."""
        fresh = [v for v in current if (key, v.reason) not in self._active]
        self._active = {(k, r) for k, r in self._active if k != key}
        self._active |= {(key, v.reason) for v in current}
        return fresh

    def _tool_failures(self, snapshot: Snapshot, at: float) -> list[Finding]:
        current = [(f, _TOOL[f.problem]) for f in snapshot.failures]
        fresh = {v.reason for v in self._fresh("tool", [v for _, v in current])}
        return [self._tool(snapshot.source, f, at) for f, v in current if v.reason in fresh]

    def _finding(self, source: str, reading: GpuReading, verdict: Verdict, at: float) -> Finding:
        gpu = reading.gpu.label()
        return Finding(
            source=f"gpu/{source}",
            reason=verdict.reason,
            severity=verdict.severity,
            fault_class=verdict.fault_class,
            message=f"{gpu}: {verdict.message}",
            at=at,
            evidence=(f"{gpu}{f' ({reading.name})' if reading.name else ''}: {verdict.message}",),
            gpu=gpu,
        )

    def _tool(self, source: str, failure: ToolFailure, at: float) -> Finding:
        verdict = _TOOL[failure.problem]
        gpu = failure.gpu.label() if failure.gpu else None
        return Finding(
            source=f"gpu/{source}",
            reason=verdict.reason,
            severity=verdict.severity,
            fault_class=verdict.fault_class,
            message=f"{source}: {verdict.message}",
            at=at,
            evidence=(failure.detail,),
            gpu=gpu,
        )
