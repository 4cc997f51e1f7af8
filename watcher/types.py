"""The shared vocabulary: what monitors report and what the policy decides.

Nothing here knows about Kubernetes, files or HTTP. Monitors, the policy, actions and
reporters exchange these types and nothing else.
"""

from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    """How bad a finding is on its own."""

    FATAL = "fatal"
    """May lead to an action (restart, evict, hold), subject to the policy."""
    WARNING = "warning"
    """Reported (log, metrics, status), never acted on."""
    INFO = "info"
    """Reported for context only."""


class FaultClass(StrEnum):
    """What kind of fault a finding points to; the policy maps each class to an action."""

    TRANSIENT = "transient"
    """Network or peer trouble (NCCL timeout, peer closed): an in-place restart fixes it."""
    APPLICATION = "application"
    """A fault in the program (device-side assert, OOM, NaN): restart, but budgeted."""
    HARDWARE = "hardware"
    """The GPU or node itself: the same GPU stays attached, restarting in place cannot help."""
    INFRASTRUCTURE = "infrastructure"
    """Storage, file handles, the node's plumbing: restart in place, budgeted."""
    HANG = "hang"
    """No progress: restart in place."""


class Action(StrEnum):
    """What the policy asks the watcher to do."""

    NONE = "none"
    """Nothing to do (info findings)."""
    WARN = "warn"
    """Report loudly, do nothing else (warnings, counts below threshold)."""
    RESTART = "restart"
    """Exit with the restart code so the kubelet restarts every container in place."""
    EVICT = "evict"
    """Move the Pod elsewhere. Needs the Kubernetes API; without it the watcher holds."""
    HOLD = "hold"
    """Stop acting, stay alive and healthy, report loudly (e.g. restart budget exhausted)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One observation by a monitor. Monitors emit these; they never decide."""

    source: str
    """The monitor that saw it, e.g. ``log``."""
    reason: str
    """CamelCase name of the rule or check, e.g. ``NcclWatchdogTimeout``."""
    severity: Severity
    fault_class: FaultClass
    message: str
    """One human line: what this means."""
    at: float
    """Monotonic time of the observation."""
    evidence: tuple[str, ...] = ()
    """The lines that prove it, already trimmed for display."""
    file: str | None = None
    """The file the evidence came from, if any."""
    offset: int | None = None
    """Byte offset of the first evidence line in ``file``."""
    gpu: str | None = None
    """The GPU it is about: UUID and PCI bus id."""
    occurrences: int = 1
    """How many times this reason was seen in the scan that produced this finding."""
    min_count: int = 1
    """The rule's count-in-window threshold: act only after this many occurrences..."""
    window_s: float = 0.0
    """...within this many seconds."""
    action: Action | None = None
    """A per-rule override of the fault class's default action."""
    bus_id: str | None = None
    """PCI bus id (`0000:3b:00`) of the GPU a kernel log line names: a node's kernel log
    holds other Pods' GPUs too, and the policy leaves those alone."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy decided about one finding."""

    action: Action
    finding: Finding
    explanation: str
    """Why, in one sentence: the text of the log line, the Event and the termination message."""
    dry_run: bool = False
    """The action is only reported ("would exit 88 because ...")."""
    details: dict[str, object] = field(default_factory=dict)
    """Numbers behind the explanation (budget used, window), for /status and the ledger."""
