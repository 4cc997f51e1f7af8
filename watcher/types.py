"""The shared vocabulary: what monitors report and what the policy decides.

Nothing here knows about Kubernetes, files or HTTP. Monitors, the policy, actions and
reporters exchange these types and nothing else.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

WORKLOAD = "workload"
"""The source of the launcher's starts and the command's exits."""
WORKLOAD_STARTED = "WorkloadStarted"
"""The reason of a launcher's start (every one after the first is an in-place restart)."""
WORKLOAD_CANNOT_START = "WorkloadCannotStart"
"""The command could not be run at all (exit 126 or 127)."""
WORKLOAD_GAVE_UP = "WorkloadGaveUp"
"""The command exited with a code the user listed as final."""
ACTIONS = "actions"
"""The source of what carrying out a decision ran into, handed back to the policy."""
EVICTION_REFUSED = "EvictionRefused"
"""The API refused the eviction (a PodDisruptionBudget, RBAC)."""
RESTART_NOT_RECORDED = "RestartNotRecorded"
"""The ledger could not record the restart, so it was not taken: the budget is blind."""

Verdict = Literal["restart", "release", "hold"]
"""What a launcher waiting on an exited workload is told: wait to be restarted in place,
exit with the workload's code, or stay for inspection."""


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
    PLATFORM = "platform"
    """The node or cluster does not carry out in-place restarts (the kubelet ignored the
    rule): another restart in place would not happen either."""


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
    """Stop acting, stay alive and healthy, report loudly. The workload keeps its GPUs."""
    FAIL = "fail"
    """Let the Pod fail with the reason, so its owner (a Job's backoffLimit and
    podFailurePolicy, a JobSet) decides: release an exited workload, or stop a running one
    through the launcher. Needs the launcher; without it the watcher holds."""
    COUNT = "count"
    """Count an in-place restart the watcher did not ask for against the budget (a rule on
    the trainer, another sidecar, a restart while the watcher was down)."""


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
    facts: Mapping[str, Any] = field(default_factory=dict)
    """What the source knows beyond the text: a workload exit's code, signal and launcher
    start. JSON-able."""


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
    verdict: Verdict | None = None
    """For a workload exit: what the launcher is told (restart, release, hold)."""
    delay_s: float = 0.0
    """Wait this long before acting: the back-off between two restarts."""
