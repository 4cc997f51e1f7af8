"""Turn each finding into a decision: nothing, warn, restart in place, evict, or hold.

Thresholds (count-in-window), the restart budget, the minimum uptime, dry run and
"that GPU is another Pod's" are all applied here and nowhere else. The policy reads the
ledger but never writes it; the actions do, once a decision is carried out.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from watcher.clock import Clock
from watcher.policy.window import SlidingCounter
from watcher.state.ledger import Ledger
from watcher.types import Action, Decision, FaultClass, Finding, Severity


def configured_action(
    severity: Severity,
    fault_class: FaultClass,
    override: Action | None,
    actions: Mapping[FaultClass, Action],
) -> Action:
    """The action one occurrence leads to, before thresholds and the budget: nothing for
    notes, a warning for warnings, else the rule's own action or its fault class's."""
    if severity is Severity.INFO:
        return Action.NONE
    if severity is Severity.WARNING:
        return Action.WARN
    return override or actions[fault_class]


@dataclass(frozen=True)
class PolicyConfig:
    restart_exit_code: int
    dry_run: bool
    max_restarts: int
    restart_window: float
    min_uptime: float
    actions: Mapping[FaultClass, Action]
    budget_exhausted_action: Action
    can_evict: bool = False
    """Whether an eviction can be carried out (needs the Kubernetes API)."""


GpuOwner = Callable[[str], bool | None]
"""Whether the GPU at a PCI bus id is this Pod's: True, False, or None (cannot tell)."""


class Policy:
    """Decides; remembers only thresholds in progress and whether it holds."""

    def __init__(
        self, config: PolicyConfig, ledger: Ledger, clock: Clock, gpu_owner: GpuOwner | None = None
    ) -> None:
        self.config = config
        self._ledger = ledger
        self._clock = clock
        self._gpu_owner = gpu_owner
        self._counts = SlidingCounter()
        self.holding: Decision | None = None
        """The decision that made the watcher hold; sticky for the life of the process."""

    def decide(self, finding: Finding) -> Decision:
        if self._another_pods_gpu(finding):
            return Decision(
                Action.NONE,
                finding,
                f"{finding.reason}: about the GPU at {finding.bus_id}, not one of this Pod's",
            )
        if finding.severity is Severity.INFO:
            return Decision(Action.NONE, finding, f"{finding.reason}: noted")
        if finding.severity is Severity.WARNING:
            return Decision(Action.WARN, finding, f"{finding.reason}: warning, no action")
        below = self._below_threshold(finding)
        if below is not None:
            return below
        if self.holding is not None:
            return Decision(
                Action.HOLD,
                finding,
                f"{finding.reason}: already holding ({self.holding.explanation}); no action",
            )
        action = configured_action(
            finding.severity, finding.fault_class, finding.action, self.config.actions
        )
        decision = self._carry(action, finding)
        if decision.action is Action.HOLD and not decision.dry_run:
            self.holding = decision
        return decision

    def _another_pods_gpu(self, finding: Finding) -> bool:
        """A kernel line about a GPU the polls show is not ours. While the polls cannot
        tell (no GPU monitor, one of ours never seen), the finding counts."""
        if finding.bus_id is None or self._gpu_owner is None:
            return False
        return self._gpu_owner(finding.bus_id) is False

    def hold(self, decision: Decision) -> None:
        """The actions could not, or need no longer, act (an eviction requested or refused):
        hold from now on."""
        if self.holding is None:
            self.holding = decision

    def _below_threshold(self, finding: Finding) -> Decision | None:
        if finding.min_count <= 1:
            return None
        seen = self._counts.add(finding.reason, finding.at, finding.occurrences, finding.window_s)
        if seen < finding.min_count:
            return Decision(
                Action.WARN,
                finding,
                f"{finding.reason}: seen {seen} of {finding.min_count} times within "
                f"{finding.window_s:g}s; no action yet",
                details={"seen": seen, "count": finding.min_count, "window_s": finding.window_s},
            )
        self._counts.reset(finding.reason)
        return None

    def _carry(self, action: Action, finding: Finding) -> Decision:
        what = f"{finding.reason} ({finding.fault_class.value})"
        if action is Action.WARN:
            return Decision(Action.WARN, finding, f"{what}: configured to warn only")
        if action is Action.HOLD:
            return self._decision(Action.HOLD, finding, f"{what}: configured to hold")
        if action is Action.EVICT:
            return self._evict(finding, f"{what}: restarting in place cannot help")
        return self._restart(finding, what)

    def _restart(self, finding: Finding, what: str) -> Decision:
        now = self._clock.wall()
        config = self.config
        recent = [
            e for e in self._ledger.actions("restart") if now - e.time < config.restart_window
        ]
        details: dict[str, object] = {
            "restarts_in_window": len(recent),
            "max_restarts": config.max_restarts,
            "window_s": config.restart_window,
        }
        if len(recent) >= config.max_restarts:
            why = (
                f"{what}: restart budget exhausted ({len(recent)} restarts in the last "
                f"{config.restart_window:g}s, at most {config.max_restarts})"
            )
            return self._escalate(finding, why, details)
        last = recent[-1] if recent else None
        if last is not None and now - last.time < config.min_uptime:
            why = (
                f"{what}: the last restart was only {now - last.time:.0f}s ago "
                f"(min_uptime {config.min_uptime:g}s)"
            )
            return self._escalate(finding, why, details)
        details["exit_code"] = config.restart_exit_code
        verb = "would exit" if config.dry_run else "exit"
        why = f"{what}: {verb} {config.restart_exit_code} to restart all containers in place"
        return self._decision(Action.RESTART, finding, why, details)

    def _escalate(self, finding: Finding, why: str, details: dict[str, object]) -> Decision:
        if self.config.budget_exhausted_action is Action.EVICT:
            return self._evict(finding, why, details)
        return self._decision(Action.HOLD, finding, f"{why}; holding", details)

    def _evict(
        self, finding: Finding, why: str, details: dict[str, object] | None = None
    ) -> Decision:
        if self.config.can_evict:
            return self._decision(Action.EVICT, finding, f"{why}; evicting the Pod", details)
        return self._decision(
            Action.HOLD,
            finding,
            f"{why}; eviction needs the Kubernetes API, which is not configured: holding",
            details,
        )

    def _decision(
        self, action: Action, finding: Finding, why: str, details: dict[str, object] | None = None
    ) -> Decision:
        return Decision(action, finding, why, dry_run=self.config.dry_run, details=details or {})
