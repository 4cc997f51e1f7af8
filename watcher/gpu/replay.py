"""`pod-watcher replay --kind nvidia-smi|dcgm-metrics|dcgmi-health`: GPU tool output, offline.

Each FILE is one poll: it is parsed (`nvidia-smi`: CSV with a header, `-q`, `-q -x` or the
default table, told apart by content; `dcgm-metrics`: dcgm-exporter's /metrics;
`dcgmi-health`: `dcgmi health -c` text or JSON, or `dcgmi diag`) and classified by a fresh
`GpuClassifier`, as the live watcher would classify its first poll, with one difference:
the live watcher takes its first reading as the baseline of the counters, so that what a
previous job left behind does not fire. A single file has no before, so it is compared
with a zero baseline instead: a nonzero volatile uncorrectable ECC count and DCGM's last
Xid are reported (the file is all there is), while the PCIe replay count is not (replays
accumulate on healthy GPUs and mean something only as a rate). The classifier itself is
unchanged: the zero baseline is a first, synthetic snapshot it is shown before the file.

Findings print in the same JSON shape as log replay, plus `gpu` and `source`; `line` is the
line of the GPU's block or row where the format has lines (null otherwise).
"""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Final

from watcher.gpu.classification.classifier import GpuClassifier
from watcher.gpu.formats.common import MAX_INPUT, Located, Text, unparsed
from watcher.gpu.formats.dcgm_exporter import parse_exporter
from watcher.gpu.formats.dcgmi import read_dcgmi
from watcher.gpu.formats.smi import read_smi_any
from watcher.gpu.model import GpuReading, Snapshot
from watcher.policy.rules import configured_action
from watcher.types import Action, FaultClass, Finding, Severity


def _read_exporter(text: Text) -> Located:
    return parse_exporter(text), {}


READERS: Final[dict[str, Callable[[Text], Located]]] = {
    "nvidia-smi": read_smi_any,
    "dcgm-metrics": _read_exporter,
    "dcgmi-health": read_dcgmi,
}
KINDS: Final = tuple(READERS)


class UnreadableOutput(ValueError):
    """The file is not the output of the tool its kind names."""


@dataclass(frozen=True, slots=True)
class GpuHit:
    """One finding about one file."""

    file: str
    line: int | None
    finding: Finding
    action: Action

    @property
    def fatal(self) -> bool:
        return self.finding.severity is Severity.FATAL

    def record(self) -> dict[str, object]:
        finding = self.finding
        return {
            "file": self.file,
            "line": self.line,
            "offset": None,
            "reason": finding.reason,
            "severity": finding.severity.value,
            "fault_class": finding.fault_class.value,
            "action": self.action.value,
            "count": 1,
            "window_s": 0.0,
            "pack": None,
            "message": finding.message,
            "evidence": list(finding.evidence),
            "gpu": finding.gpu,
            "source": finding.source,
        }

    def text(self) -> str:
        finding = self.finding
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        head = f"{where}: {finding.reason} [{finding.severity.value}, "
        head += f"{finding.fault_class.value} -> {self.action.value}]"
        return "\n".join([head, *(f"    {line}" for line in finding.evidence)])


class GpuReplayer:
    """Reads files as polls of one GPU tool; shaped like the log replay's `Replayer`, so
    one loop, one writer (`watcher.replay.write_hits`) and one exit-code contract serve
    both: `replay(path)` yields hits (each with `fatal`, `record()` and `text()`), and
    raises OSError for a file it cannot read, UnreadableOutput (a ValueError) for one
    that is not the tool's output."""

    def __init__(self, kind: str, actions: Mapping[FaultClass, Action]) -> None:
        if kind not in READERS:
            raise ValueError(f"unknown GPU replay kind {kind!r}; known: {', '.join(KINDS)}")
        self._read = READERS[kind]
        self._actions = actions

    def replay(self, path: str) -> Iterator[GpuHit]:
        with open(path, "rb") as handle:
            data = handle.read(MAX_INPUT + 1)
        snapshot, lines = self._read(data)
        why = unparsed(snapshot)
        if why is not None:
            raise UnreadableOutput(why)
        for finding in classify_once(snapshot):
            line = lines.get(finding.gpu) if finding.gpu else None
            yield GpuHit(
                path,
                line,
                finding,
                configured_action(finding, self._actions),
            )


def replay_gpu(path: str, kind: str, actions: Mapping[FaultClass, Action]) -> list[GpuHit]:
    """The findings of one file (see `GpuReplayer.replay`)."""
    return list(GpuReplayer(kind, actions).replay(path))


def classify_once(snapshot: Snapshot, at: float = 0.0) -> list[Finding]:
    """Findings of a single snapshot, against a zero baseline (see the module's notes)."""
    classifier = GpuClassifier()
    classifier.classify(zero_baseline(snapshot), at)
    return classifier.classify(snapshot, at)


def zero_baseline(snapshot: Snapshot) -> Snapshot:
    """Each GPU with no condition, zero uncorrectable ECC errors and no Xid, and the PCIe
    replay count it has now."""
    return Snapshot(snapshot.source, readings=tuple(_zero(r) for r in snapshot.readings))


def _zero(reading: GpuReading) -> GpuReading:
    return replace(
        GpuReading(reading.gpu, pcie_replays=reading.pcie_replays),
        ecc_uncorrected_volatile=None if reading.ecc_uncorrected_volatile is None else 0,
        xid=None if reading.xid is None else 0,
    )
