"""What the policy decides on the gang monitor's findings, and one budget per gang restart."""

from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import FakeClock
from tests.policy.test_policy import CONFIG, budget
from watcher.gang import reasons as gang
from watcher.policy.budget import in_window
from watcher.policy.policy import Policy
from watcher.state.ledger import Ledger, LedgerEntry
from watcher.types import Action, FaultClass, Finding, Severity

KEY = "jobset/default/js"


@pytest.fixture
def ledger(tmp_path: Path, clock: FakeClock) -> Ledger:
    return Ledger(tmp_path, clock=clock)


def gang_finding(
    clock: FakeClock, reason: str = gang.GANG_RESTART, generation: int = 1, **fields: object
) -> Finding:
    base = Finding(
        source=gang.GANG,
        reason=reason,
        severity=Severity.FATAL,
        fault_class=FaultClass.TRANSIENT,
        message="the gang is restarting",
        at=clock.monotonic(),
        facts={gang.GANG_KEY: KEY, gang.GENERATION: generation},
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def gang_restart(ledger: Ledger, clock: FakeClock, generation: int, ago: float = 10) -> None:
    details = {gang.GANG_KEY: KEY, gang.GENERATION: generation}
    ledger.append(LedgerEntry("restart", "X", clock.wall() - ago, details=details))


def test_a_peer_restart_is_followed_at_once_without_back_off(
    ledger: Ledger, clock: FakeClock
) -> None:
    gang_restart(ledger, clock, 1, ago=1)
    policy = Policy(budget(backoff=60), ledger, clock)
    decision = policy.decide(gang_finding(clock, generation=2))
    assert decision.action is Action.RESTART
    assert decision.delay_s == 0
    assert decision.details[gang.FOLLOW] is True
    assert decision.details[gang.GENERATION] == 2
    assert policy.state == "restarting"


def test_a_generation_already_counted_costs_no_budget(ledger: Ledger, clock: FakeClock) -> None:
    for generation in (1, 2, 3):
        gang_restart(ledger, clock, generation)
    policy = Policy(CONFIG, ledger, clock)  # 3 of 3 used
    assert policy.decide(gang_finding(clock, generation=3)).action is Action.RESTART


def test_a_new_generation_past_the_budget_escalates(ledger: Ledger, clock: FakeClock) -> None:
    for generation in (1, 2, 3):
        gang_restart(ledger, clock, generation)
    policy = Policy(CONFIG, ledger, clock)
    decision = policy.decide(gang_finding(clock, generation=4))
    assert decision.action is Action.HOLD  # CONFIG's budget_exhausted_action
    assert "budget exhausted" in decision.explanation


def test_the_barrier_deadline_fails_the_pod(ledger: Ledger, clock: FakeClock) -> None:
    policy = Policy(replace(CONFIG, can_fail=True), ledger, clock)
    decision = policy.decide(gang_finding(clock, gang.BARRIER_DEADLINE))
    assert decision.action is Action.FAIL
    assert policy.state == "failing"


@pytest.mark.parametrize(
    ("reason", "severity", "action"),
    [
        (gang.COORDINATION_LOST, Severity.WARNING, Action.WARN),
        (gang.COORDINATION_BACK, Severity.INFO, Action.NONE),
        (gang.BARRIER_LIFTED, Severity.INFO, Action.NONE),
    ],
)
def test_lost_coordination_keeps_running(
    ledger: Ledger, clock: FakeClock, reason: str, severity: Severity, action: Action
) -> None:
    policy = Policy(CONFIG, ledger, clock)
    assert policy.decide(gang_finding(clock, reason, severity=severity)).action is action
    assert policy.state == "watching"


def test_one_gang_restart_counts_once_in_the_budget(ledger: Ledger, clock: FakeClock) -> None:
    gang_restart(ledger, clock, 1)
    gang_restart(ledger, clock, 1)  # e.g. decided, then the peer's restart seen again
    gang_restart(ledger, clock, 2)
    ledger.append(LedgerEntry("restart", "Y", clock.wall()))  # no gang: counts on its own
    assert len(in_window(ledger.entries, ledger.age, 3600)) == 3
