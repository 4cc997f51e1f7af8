"""Snapshots to findings, each fault once: the classifier remembers what it has seen.

Counters (volatile ECC, PCIe replays, DCGM's last Xid) fire when they move between two
readings; the first reading is only the baseline, so what the previous job left behind
never fires. Conditions (GPU lost, reset required, a recovery action) and tool failures
fire when first seen and again only after they cleared.

Live (the monitor, not the offline replay), the classifier also remembers which GPUs the
source has read. When a later poll cannot reach them (`verdicts.UNREACHABLE`: the driver
gone, no devices), that is one hardware finding, `GpuUnreachable`, for all of them: the
GPUs were there and are gone. On a single capture the same output stays a warning, since
it cannot tell a lost driver from a container never given GPUs.
"""

from dataclasses import dataclass, field

from watcher.gpu.classification.verdicts import (
    TOOL,
    UNREACHABLE,
    UNREACHABLE_REASON,
    Verdict,
    changes,
    conditions,
    unreachable,
)
from watcher.gpu.model import GpuReading, Snapshot, ToolFailure
from watcher.types import Finding

TOOL_KEY = "tool"
"""The key of failures in the set of conditions reported."""


@dataclass
class GpuClassifier:
    """Remembers each GPU's last reading, the conditions reported, and (``live``) the GPUs
    the source has read."""

    live: bool = False
    _baseline: dict[str, GpuReading] = field(default_factory=dict)
    _active: set[tuple[str, str]] = field(default_factory=set)
    """(GPU key or TOOL_KEY, reason) of conditions reported and still present."""
    _answered: dict[str, str] = field(default_factory=dict)
    """GPU key -> label of each GPU the source has read (live only)."""

    def classify(self, snapshot: Snapshot, at: float) -> list[Finding]:
        findings = self._tool_failures(snapshot, at)
        for reading in snapshot.readings:
            key = reading.gpu.key
            before = self._baseline.setdefault(key, reading)
            self._baseline[key] = reading
            if self.live and not reading.lost:
                self._answered[key] = reading.gpu.label()
            verdicts = self._fresh(key, list(conditions(reading))) + list(changes(before, reading))
            findings += [_finding(snapshot.source, reading, v, at) for v in verdicts]
        return findings

    def _fresh(self, key: str, current: list[Verdict]) -> list[Verdict]:
        """The conditions not reported yet; forget those that cleared."""
        fresh = [v for v in current if (key, v.reason) not in self._active]
        self._active = {(k, r) for k, r in self._active if k != key}
        self._active |= {(key, v.reason) for v in current}
        return fresh

    def _tool_failures(self, snapshot: Snapshot, at: float) -> list[Finding]:
        """One finding per reason, the first time it shows."""
        gone = self._gone(snapshot)
        groups: dict[str, tuple[Verdict, list[ToolFailure]]] = {}
        for failure in snapshot.failures:
            verdict = TOOL[failure.problem]
            if gone and failure.problem in UNREACHABLE:
                verdict = unreachable(gone)
            groups.setdefault(verdict.reason, (verdict, []))[1].append(failure)
        fresh = {v.reason for v in self._fresh(TOOL_KEY, [v for v, _ in groups.values()])}
        findings = []
        for reason, (verdict, failures) in groups.items():
            if reason in fresh:
                named = gone if verdict.reason == UNREACHABLE_REASON else _named(failures)
                findings.append(_tool_finding(snapshot.source, verdict, failures, named, at))
        return findings

    def _gone(self, snapshot: Snapshot) -> list[str]:
        """The GPUs read before that this poll reads no more, while it fails to reach GPUs."""
        if not any(f.problem in UNREACHABLE for f in snapshot.failures):
            return []
        present = {r.gpu.key for r in snapshot.readings if not r.lost}
        return [label for key, label in self._answered.items() if key not in present]


def _finding(source: str, reading: GpuReading, verdict: Verdict, at: float) -> Finding:
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


def _named(failures: list[ToolFailure]) -> list[str]:
    return list(dict.fromkeys(f.gpu.label() for f in failures if f.gpu))


def _tool_finding(
    source: str, verdict: Verdict, failures: list[ToolFailure], gpus: list[str], at: float
) -> Finding:
    return Finding(
        source=f"gpu/{source}",
        reason=verdict.reason,
        severity=verdict.severity,
        fault_class=verdict.fault_class,
        message=f"{source}: {verdict.message}",
        at=at,
        evidence=tuple(dict.fromkeys(f.detail for f in failures)),
        gpu=", ".join(gpus) or None,
    )
