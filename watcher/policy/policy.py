"""Turn each finding into a decision: nothing, warn, restart in place, evict, fail, hold.

Thresholds (count-in-window), the restart budget and its back-off, dry run, "that GPU is
another Pod's", what a workload's exit leads to, and what the watcher does once it stopped
acting: all of it is decided here and nowhere else. The policy reads the ledger but never
writes it; the actions do, once a decision is carried out.
"""

from collections.abc import Callable
from dataclasses import replace

from watcher.clock import Clock
from watcher.gang import reasons as gang
from watcher.policy.budget import allowance, counts_generation
from watcher.policy.config import PolicyConfig
from watcher.policy.rules import configured_action, view_of
from watcher.policy.window import SlidingCounter
from watcher.state.ledger import Ledger
from watcher.types import (
    ACTIONS,
    EVICTION_REFUSED,
    RESTART_NOT_RECORDED,
    WORKLOAD,
    WORKLOAD_CANNOT_START,
    WORKLOAD_GAVE_UP,
    WORKLOAD_STARTED,
    Action,
    Decision,
    Finding,
    Severity,
    Verdict,
)

_BEYOND_RESTART = (WORKLOAD_CANNOT_START, WORKLOAD_GAVE_UP)
"""Exits no restart can mend: the command cannot be run, or exited with a final code."""
CAUSE_WINDOW = 300.0
"""A fatal finding this many seconds before the workload's exit is taken as its cause."""


ForeignGpu = Callable[[Finding], str | None]
"""The PCI bus id of the GPU a finding names when that GPU is known not to be this Pod's;
None when it names none, names one of ours, or nobody can tell yet."""


class Policy:
    """Decides; remembers thresholds in progress, the workload's latest start, and the
    decision that made it stop acting."""

    def __init__(
        self,
        config: PolicyConfig,
        ledger: Ledger,
        clock: Clock,
        foreign_gpu: ForeignGpu | None = None,
    ) -> None:
        self.config = config
        self._ledger = ledger
        self._clock = clock
        self._foreign_gpu = foreign_gpu
        self._counts = SlidingCounter()
        self._last_fatal: Finding | None = None
        self.workload_start: int | None = None
        """The launcher's latest start, as the workload monitor reported it."""
        self.restarting: Decision | None = None
        """The restart being carried out: nothing else is acted on meanwhile."""
        self.final: Decision | None = None
        """The hold, fail or eviction after which the watcher no longer acts."""

    @property
    def holding(self) -> Decision | None:
        final = self.final
        return final if final is not None and final.action is Action.HOLD else None

    @property
    def state(self) -> str:
        if self.config.dry_run:
            return "dry_run"
        if self.restarting is not None:
            return "restarting"
        final = self.final
        names = {Action.HOLD: "holding", Action.FAIL: "failing", Action.EVICT: "evicting"}
        return "watching" if final is None else names[final.action]

    def decide(self, finding: Finding) -> Decision:
        if finding.source == WORKLOAD:
            return self._workload(finding)
        if finding.source == ACTIONS:
            return self._setback(finding)
        if finding.source == gang.GANG and finding.severity is Severity.FATAL:
            return self._gang(finding)
        early = self._early(finding)
        if early is not None:
            return early
        busy = self._busy(finding)
        if busy is not None:
            return busy
        action = configured_action(finding, self.config.actions, self._own_action(finding))
        return self._settle(self._carry(action, finding, self._what(finding)))

    def _setback(self, finding: Finding) -> Decision:
        """An eviction refused, or a restart the ledger could not record: fail instead."""
        if finding.reason == EVICTION_REFUSED and self._final_is(Action.EVICT):
            self.final = None
        elif finding.reason == RESTART_NOT_RECORDED and self.restarting is not None:
            self.restarting = None
        else:
            return Decision(Action.NONE, finding, f"{finding.reason}: noted")
        return self._settle(self._fail(finding, f"{finding.reason}: {finding.message}"))

    def _early(self, finding: Finding) -> Decision | None:
        """Decisions that need neither the budget nor the state: notes, warnings, another
        Pod's GPU, a threshold not reached yet."""
        theirs = None if self._foreign_gpu is None else self._foreign_gpu(finding)
        if theirs is not None:
            why = f"{finding.reason}: about the GPU at {theirs}, not one of this Pod's"
            return Decision(Action.NONE, finding, why)
        if finding.severity is Severity.INFO:
            return Decision(Action.NONE, finding, f"{finding.reason}: noted")
        if finding.severity is Severity.WARNING:
            return Decision(Action.WARN, finding, f"{finding.reason}: warning, no action")
        self._last_fatal = finding  # the likely cause of an exit that follows
        return self._below_threshold(finding)

    def _busy(self, finding: Finding) -> Decision | None:
        """Nothing more to act on while a restart is under way or after the last act."""
        current = self.restarting or self.final
        if current is None:
            return None
        doing = "restarting" if current is self.restarting else self.state
        why = f"{finding.reason}: already {doing} ({current.explanation}); no action"
        return Decision(Action.NONE, finding, why)

    def _final_is(self, action: Action) -> bool:
        return self.final is not None and self.final.action is action

    def _own_action(self, finding: Finding) -> Action | None:
        """A rule's own action, or ``fail`` for an exit no restart can mend."""
        if finding.source == WORKLOAD and finding.reason in _BEYOND_RESTART:
            return Action.FAIL
        return view_of(self.config.rules, finding).action

    def _below_threshold(self, finding: Finding) -> Decision | None:
        rule = view_of(self.config.rules, finding)
        if rule.count <= 1:
            return None
        seen = self._counts.add(
            finding.reason,
            finding.at,
            finding.occurrences,
            rule.window,
            where=None if finding.file is None else (finding.file, finding.offset),
        )
        if seen < rule.count:
            return Decision(
                Action.WARN,
                finding,
                f"{finding.reason}: seen {seen} of {rule.count} times within "
                f"{rule.window:g}s; no action yet",
                details={"seen": seen, "count": rule.count, "window_s": rule.window},
            )
        self._counts.reset(finding.reason)
        return None

    # -- the gang (docs/gang.md) ---------------------------------------------------------

    def _gang(self, finding: Finding) -> Decision:
        """A peer's gang restart is followed; a barrier that never lifts fails the Pod."""
        busy = self._busy(finding)
        if busy is not None:
            return busy
        if finding.reason == gang.BARRIER_DEADLINE:
            why = f"{finding.reason}: {finding.message}: the gang cannot train without every Pod"
            return self._settle(self._fail(finding, why))
        return self._settle(self._follow(finding))

    def _follow(self, finding: Finding) -> Decision:
        """Restart with the gang at once (no back-off: the peer that decided waited it
        out). A generation this Pod's ledger already counted costs no budget again."""
        marks = {
            gang.GENERATION: finding.facts.get(gang.GENERATION),
            gang.GANG_KEY: finding.facts.get(gang.GANG_KEY),
            gang.FOLLOW: True,
        }
        budget = allowance(self.config.budget, self._ledger.entries, self._ledger.age)
        if not budget.allowed and not counts_generation(
            self._ledger.entries, marks[gang.GANG_KEY], marks[gang.GENERATION]
        ):
            return self._escalate(finding, f"{finding.reason}: {budget.why}", budget.details)
        code = self.config.restart_exit_code
        verb = "would exit" if self.config.dry_run else "exit"
        why = f"{finding.message}: {verb} {code} to restart all containers with the gang"
        details = {**budget.details, "exit_code": code, **marks}
        return self._decision(Action.RESTART, finding, why, details)

    # -- the workload's starts and exits ------------------------------------------------

    def _workload(self, finding: Finding) -> Decision:
        start = finding.facts.get("start")
        if finding.reason == WORKLOAD_STARTED and isinstance(start, int):
            self.workload_start = start
            return self._started(finding, start)
        return self._exited(finding)

    def _started(self, finding: Finding, start: int) -> Decision:
        if start <= 1:
            return Decision(Action.NONE, finding, "the workload started")
        replaced = start - 1
        asked = any(
            entry.action == "restart" and entry.details.get("launcher_start") == replaced
            for entry in self._ledger.entries
        )
        if asked:
            why = f"launcher start {start}: the in-place restart recorded in the ledger"
            return Decision(Action.NONE, finding, why)
        why = (
            f"launcher start {start}: an in-place restart the watcher did not ask for (a rule "
            "on another container, or one while the watcher was down); counted in the budget"
        )
        details: dict[str, object] = {"launcher_start": replaced, "observed_start": start}
        return self._decision(Action.COUNT, finding, why, details)

    def _exited(self, finding: Finding) -> Decision:
        restarting = self.restarting
        if restarting is not None:
            why = f"{finding.reason}: the Pod is being restarted in place already"
            return Decision(
                Action.NONE, finding, why, verdict="restart", delay_s=restarting.delay_s
            )
        busy = self._busy(finding)
        if busy is not None:
            held: Verdict = "hold" if self._final_is(Action.HOLD) else "release"
            return replace(busy, verdict=held)
        if finding.severity is Severity.INFO:
            why = f"{finding.reason}: the workload finished; the Pod completes"
            return Decision(Action.NONE, finding, why, verdict="release")
        cause = self._cause(finding)
        what = self._what(finding)
        if cause is not None:
            what += f" after {cause.reason} ({cause.fault_class.value})"
            finding = replace(
                finding, evidence=(*finding.evidence[:1], *cause.evidence, *finding.evidence[1:])
            )
        action = configured_action(finding, self.config.actions, self._own_action(finding))
        decision = self._carry(action, finding, what)
        if cause is not None:
            decision = replace(decision, details={**decision.details, "cause": cause.reason})
        return self._settle(replace(decision, verdict=_verdict(decision)))

    def _cause(self, finding: Finding) -> Finding | None:
        last = self._last_fatal
        if last is None or finding.at - last.at > CAUSE_WINDOW:
            return None
        return last

    # -- carrying a fatal finding to an action -------------------------------------------

    def _what(self, finding: Finding) -> str:
        return f"{finding.reason} ({finding.fault_class.value})"

    def _carry(self, action: Action, finding: Finding, what: str) -> Decision:
        if action is Action.WARN:
            return Decision(Action.WARN, finding, f"{what}: configured to warn only")
        if action is Action.HOLD:
            return self._decision(Action.HOLD, finding, f"{what}: configured to hold")
        if action is Action.FAIL:
            return self._fail(finding, f"{what}: no restart can mend it")
        if action is Action.EVICT:
            return self._evict(finding, f"{what}: restarting in place cannot help")
        return self._restart(finding, what)

    def _restart(self, finding: Finding, what: str) -> Decision:
        config = self.config
        budget = allowance(config.budget, self._ledger.entries, self._ledger.age)
        if not budget.allowed:
            return self._escalate(finding, f"{what}: {budget.why}", budget.details)
        details = {**budget.details, "exit_code": config.restart_exit_code}
        verb = "would exit" if config.dry_run else "exit"
        why = f"{what}: {verb} {config.restart_exit_code} to restart all containers in place"
        if budget.delay > 0:
            why += f", after a back-off of {budget.delay:.0f}s"
        decision = self._decision(Action.RESTART, finding, why, details)
        return replace(decision, delay_s=budget.delay)

    def _escalate(self, finding: Finding, why: str, details: dict[str, object]) -> Decision:
        then = self.config.budget_exhausted_action
        if then is Action.EVICT:
            return self._evict(finding, why, details)
        if then is Action.FAIL:
            return self._fail(finding, why, details)
        return self._decision(Action.HOLD, finding, f"{why}; holding", details)

    def _evict(
        self, finding: Finding, why: str, details: dict[str, object] | None = None
    ) -> Decision:
        if self.config.can_evict:
            return self._decision(Action.EVICT, finding, f"{why}; evicting the Pod", details)
        return self._fail(finding, f"{why}; eviction needs the Kubernetes API", details)

    def _fail(
        self, finding: Finding, why: str, details: dict[str, object] | None = None
    ) -> Decision:
        if self.config.can_fail:
            return self._decision(Action.FAIL, finding, f"{why}; failing the Pod", details)
        why += "; failing the Pod needs the launcher (WATCHER_LAUNCHER_DIR): holding"
        return self._decision(Action.HOLD, finding, why, details)

    def _decision(
        self, action: Action, finding: Finding, why: str, details: dict[str, object] | None = None
    ) -> Decision:
        facts = {"launcher_start": self.workload_start} if self.workload_start else {}
        return Decision(
            action, finding, why, dry_run=self.config.dry_run, details={**facts, **(details or {})}
        )

    def _settle(self, decision: Decision) -> Decision:
        """Remember a decision that changes what the watcher does next."""
        if decision.dry_run:
            return decision
        if decision.action is Action.RESTART:
            self.restarting = decision
        elif decision.action in (Action.HOLD, Action.FAIL, Action.EVICT):
            self.final = decision
        return decision


def _verdict(decision: Decision) -> Verdict:
    """What the launcher of an exited workload is told: a dry run never keeps it."""
    if decision.dry_run:
        return "release"
    if decision.action is Action.RESTART:
        return "restart"
    return "hold" if decision.action is Action.HOLD else "release"
