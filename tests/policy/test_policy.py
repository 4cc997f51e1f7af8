"""The policy: thresholds, the restart budget, min uptime, hold and dry run, on a fake clock."""

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeClock
from watcher.config.settings import DEFAULT_ACTIONS
from watcher.policy.budget import BudgetConfig
from watcher.policy.config import PolicyConfig
from watcher.policy.policy import Policy
from watcher.policy.rules import RuleView
from watcher.state.ledger import Ledger, LedgerEntry
from watcher.types import Action, Decision, FaultClass, Finding, Severity

CONFIG = PolicyConfig(
    restart_exit_code=88,
    dry_run=False,
    budget=BudgetConfig(max_restarts=3, window=3600),
    actions=DEFAULT_ACTIONS,
    budget_exhausted_action=Action.HOLD,
)


def budget(config: PolicyConfig = CONFIG, **fields: Any) -> PolicyConfig:
    return replace(config, budget=replace(config.budget, **fields))


def ruled(
    config: PolicyConfig = CONFIG, reason: str = "NcclWatchdogTimeout", **view: Any
) -> PolicyConfig:
    """``config`` with a rule of the log monitor's for ``reason`` (`RuleView` fields)."""
    return replace(config, rules={("log", reason): RuleView(**view)})


def finding(clock: FakeClock, **fields: object) -> Finding:
    base = Finding(
        source="log",
        reason="NcclWatchdogTimeout",
        severity=Severity.FATAL,
        fault_class=FaultClass.TRANSIENT,
        message="collective timed out",
        at=clock.monotonic(),
        evidence=("Watchdog caught collective operation timeout",),
        file="/logs/train.log",
        offset=120,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


@pytest.fixture
def ledger(tmp_path: Path, clock: FakeClock) -> Ledger:
    return Ledger(tmp_path, clock=clock)


def restarted(ledger: Ledger, clock: FakeClock, ago: float) -> None:
    ledger.append(LedgerEntry(action="restart", reason="X", time=clock.wall() - ago))


def decide(policy: Policy, clock: FakeClock, **fields: object) -> Decision:
    return policy.decide(finding(clock, **fields))


def test_transient_fatal_restarts_with_the_exit_code(ledger: Ledger, clock: FakeClock) -> None:
    decision = decide(Policy(CONFIG, ledger, clock), clock)
    assert decision.action is Action.RESTART
    assert decision.details["exit_code"] == 88
    assert "exit 88" in decision.explanation
    assert decision.details["restarts_in_window"] == 0


@pytest.mark.parametrize(
    ("severity", "action"), [(Severity.INFO, Action.NONE), (Severity.WARNING, Action.WARN)]
)
def test_non_fatal_findings_never_act(
    ledger: Ledger, clock: FakeClock, severity: Severity, action: Action
) -> None:
    assert decide(Policy(CONFIG, ledger, clock), clock, severity=severity).action is action


def test_count_in_window(ledger: Ledger, clock: FakeClock) -> None:
    policy = Policy(ruled(count=3, window=60.0), ledger, clock)
    assert decide(policy, clock, offset=100).action is Action.WARN
    clock.advance(61)  # the first sighting leaves the window
    assert decide(policy, clock, offset=200).action is Action.WARN
    clock.advance(30)
    second = decide(policy, clock, offset=300)
    assert second.action is Action.WARN
    assert "seen 2 of 3" in second.explanation
    clock.advance(10)
    assert decide(policy, clock, offset=400).action is Action.RESTART
    assert decide(policy, clock, offset=500).action is Action.WARN  # starts over
    fresh = Policy(ruled(count=3, window=60.0), ledger, clock)
    assert decide(fresh, clock, source="probe").action is Action.RESTART  # not the rule's


def test_a_line_read_twice_counts_once(ledger: Ledger, clock: FakeClock) -> None:
    """After a restart of the watcher alone, the lines since the last cursor save are read
    again: the same file and offset never counts twice toward a threshold."""
    policy = Policy(ruled(count=2, window=60.0), ledger, clock)
    assert decide(policy, clock, offset=100).action is Action.WARN
    again = decide(policy, clock, offset=100)
    assert (again.action, again.details["seen"]) == (Action.WARN, 1)
    assert decide(policy, clock, offset=100, file="/logs/other.log").action is Action.RESTART


def test_occurrences_in_one_scan_count_towards_the_threshold(
    ledger: Ledger, clock: FakeClock
) -> None:
    policy = Policy(ruled(count=3, window=60.0), ledger, clock)
    assert decide(policy, clock, occurrences=3).action is Action.RESTART


def test_fourth_restart_within_budget_of_three_holds(ledger: Ledger, clock: FakeClock) -> None:
    for ago in (3000, 2000, 1000):
        restarted(ledger, clock, ago)
    policy = Policy(CONFIG, ledger, clock)
    decision = decide(policy, clock)
    assert decision.action is Action.HOLD
    assert (
        "restart budget exhausted (3 restarts in the last 3600s, at most 3)" in decision.explanation
    )
    assert policy.holding is decision
    later = decide(policy, clock, reason="Other")
    assert later.action is Action.NONE
    assert "already holding" in later.explanation


def test_restarts_outside_the_window_do_not_count(ledger: Ledger, clock: FakeClock) -> None:
    for ago in (7200, 5000, 3601):
        restarted(ledger, clock, ago)
    restarted(ledger, clock, 10)
    decision = decide(Policy(CONFIG, ledger, clock), clock)
    assert decision.action is Action.RESTART
    assert decision.details["restarts_in_window"] == 1


def test_zero_budget_never_restarts(ledger: Ledger, clock: FakeClock) -> None:
    policy = Policy(budget(max_restarts=0), ledger, clock)
    assert decide(policy, clock).action is Action.HOLD


def test_min_uptime(ledger: Ledger, clock: FakeClock) -> None:
    restarted(ledger, clock, 30)
    policy = Policy(budget(min_uptime=60), ledger, clock)
    decision = decide(policy, clock)
    assert decision.action is Action.HOLD
    assert "only 30s ago (min_uptime 60s)" in decision.explanation
    assert decide(Policy(budget(min_uptime=20), ledger, clock), clock).action is Action.RESTART


def test_hardware_fault_holds_without_api(ledger: Ledger, clock: FakeClock) -> None:
    decision = decide(Policy(CONFIG, ledger, clock), clock, fault_class=FaultClass.HARDWARE)
    assert decision.action is Action.HOLD
    assert "eviction needs the Kubernetes API" in decision.explanation


def test_hardware_fault_evicts_when_it_can(ledger: Ledger, clock: FakeClock) -> None:
    policy = Policy(replace(CONFIG, can_evict=True), ledger, clock)
    assert decide(policy, clock, fault_class=FaultClass.HARDWARE).action is Action.EVICT


def test_exhausted_budget_can_escalate_to_evict(ledger: Ledger, clock: FakeClock) -> None:
    for ago in (3, 2, 1):
        restarted(ledger, clock, ago)
    config = replace(CONFIG, budget_exhausted_action=Action.EVICT, can_evict=True)
    assert decide(Policy(config, ledger, clock), clock).action is Action.EVICT


def test_per_rule_and_per_class_overrides(ledger: Ledger, clock: FakeClock) -> None:
    config = replace(CONFIG, actions={**DEFAULT_ACTIONS, FaultClass.TRANSIENT: Action.WARN})
    assert decide(Policy(config, ledger, clock), clock).action is Action.WARN
    policy = Policy(ruled(action=Action.HOLD), ledger, clock)
    assert decide(policy, clock).action is Action.HOLD
    fresh = Policy(ruled(action=Action.HOLD), ledger, clock)
    assert decide(fresh, clock, reason="Other").action is Action.RESTART  # its own rule only


def test_dry_run_decides_but_never_holds_for_good(ledger: Ledger, clock: FakeClock) -> None:
    policy = Policy(budget(replace(CONFIG, dry_run=True), max_restarts=0), ledger, clock)
    first = decide(policy, clock)
    assert first.dry_run and first.action is Action.HOLD
    assert policy.holding is None
    dry = Policy(replace(CONFIG, dry_run=True), ledger, clock)
    decision = decide(dry, clock)
    assert decision.dry_run and decision.action is Action.RESTART
    assert "would exit 88" in decision.explanation


@pytest.mark.parametrize(
    ("owner", "expected"),
    [(False, Action.NONE), (None, Action.EVICT), (True, Action.EVICT)],
)
def test_a_kernel_line_about_another_pods_gpu_is_left_alone(
    ledger: Ledger, clock: FakeClock, owner: bool | None, expected: Action
) -> None:
    asked: list[str] = []

    def foreign(seen: Finding) -> str | None:  # what the GPU monitor answers
        asked.append(seen.reason)
        return "0000:9b:00" if owner is False else None

    policy = Policy(replace(CONFIG, can_evict=True), ledger, clock, foreign_gpu=foreign)
    xid = decide(policy, clock, reason="XidGpuFallenOffBus", fault_class=FaultClass.HARDWARE)
    assert (xid.action, asked) == (expected, ["XidGpuFallenOffBus"])
    if expected is Action.NONE:
        assert "0000:9b:00, not one of this Pod's" in xid.explanation
