"""The fate of the Pod: workload exits and starts, fail, the back-off and setbacks."""

from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import FakeClock
from tests.policy.test_policy import CONFIG, budget, decide, restarted, ruled
from watcher.policy.budget import backoff_for
from watcher.policy.policy import Policy
from watcher.state.ledger import Ledger, LedgerEntry
from watcher.types import (
    ACTIONS,
    EVICTION_REFUSED,
    RESTART_NOT_RECORDED,
    Action,
    FaultClass,
    Finding,
    Severity,
)
from watcher.workload.exits import explain_exit

LAUNCHED = replace(CONFIG, can_fail=True, budget_exhausted_action=Action.FAIL)


@pytest.fixture
def ledger(tmp_path: Path, clock: FakeClock) -> Ledger:
    return Ledger(tmp_path, clock=clock)


def exited(
    clock: FakeClock, code: int | None = 1, signal: int | None = None, start: int = 1
) -> Finding:
    meaning = explain_exit(code, signal, final_codes=(3,))
    return Finding(
        source="workload",
        reason=meaning.reason,
        severity=meaning.severity,
        fault_class=meaning.fault_class,
        message=meaning.message,
        at=clock.monotonic(),
        evidence=(meaning.message, "last line"),
        facts={"start": start, "code": code, "signal": signal},
    )


def started(clock: FakeClock, start: int) -> Finding:
    return Finding(
        "workload",
        "WorkloadStarted",
        Severity.INFO,
        FaultClass.APPLICATION,
        "started",
        clock.monotonic(),
        facts={"start": start},
    )


def test_an_exit_after_a_fatal_line_restarts_and_names_its_cause(
    ledger: Ledger, clock: FakeClock
) -> None:
    policy = Policy(ruled(LAUNCHED, count=2, window=60.0), ledger, clock)
    policy.decide(started(clock, 1))
    below = decide(policy, clock)  # seen once: no action yet
    assert below.action is Action.WARN
    clock.advance(0.01)
    decision = policy.decide(exited(clock, signal=9))
    assert (decision.action, decision.verdict) == (Action.RESTART, "restart")
    assert "WorkloadKilled (application) after NcclWatchdogTimeout" in decision.explanation
    assert decision.details["cause"] == "NcclWatchdogTimeout"
    assert decision.details["launcher_start"] == 1
    assert "Watchdog caught collective operation timeout" in decision.finding.evidence
    assert policy.state == "restarting"


def test_an_exit_while_restarting_is_told_to_wait(ledger: Ledger, clock: FakeClock) -> None:
    policy = Policy(LAUNCHED, ledger, clock)
    assert decide(policy, clock).action is Action.RESTART
    decision = policy.decide(exited(clock, code=1))
    assert (decision.action, decision.verdict) == (Action.NONE, "restart")


def test_exit_zero_releases_the_workload(ledger: Ledger, clock: FakeClock) -> None:
    decision = Policy(LAUNCHED, ledger, clock).decide(exited(clock, code=0))
    assert (decision.action, decision.verdict) == (Action.NONE, "release")
    assert "the Pod completes" in decision.explanation


@pytest.mark.parametrize("code", [127, 3])
def test_codes_no_restart_can_mend_fail_at_once(
    ledger: Ledger, clock: FakeClock, code: int
) -> None:
    decision = Policy(LAUNCHED, ledger, clock).decide(exited(clock, code=code))
    assert (decision.action, decision.verdict) == (Action.FAIL, "release")
    assert "no restart can mend it; failing the Pod" in decision.explanation
    assert not ledger.entries  # the policy never writes the ledger


def test_a_spent_budget_fails_the_pod_with_the_launcher_and_holds_without(
    ledger: Ledger, clock: FakeClock
) -> None:
    for ago in (300, 200, 100):
        restarted(ledger, clock, ago)
    failing = Policy(LAUNCHED, ledger, clock).decide(exited(clock, code=1))
    assert (failing.action, failing.verdict) == (Action.FAIL, "release")
    assert "restart budget exhausted" in failing.explanation
    assert "failing the Pod" in failing.explanation
    no_launcher = replace(LAUNCHED, can_fail=False)
    held = decide(Policy(no_launcher, ledger, clock), clock)
    assert held.action is Action.HOLD
    assert "needs the launcher (WATCHER_LAUNCHER_DIR): holding" in held.explanation


def test_a_held_pod_keeps_its_exited_workload(ledger: Ledger, clock: FakeClock) -> None:
    policy = Policy(replace(LAUNCHED, budget_exhausted_action=Action.HOLD), ledger, clock)
    for ago in (300, 200, 100):
        restarted(ledger, clock, ago)
    assert decide(policy, clock).action is Action.HOLD
    decision = policy.decide(exited(clock, code=1))
    assert (decision.action, decision.verdict) == (Action.NONE, "hold")
    assert policy.state == "holding"


def test_a_failing_pod_releases_the_workload_it_stopped(ledger: Ledger, clock: FakeClock) -> None:
    config = replace(LAUNCHED, actions={**LAUNCHED.actions, FaultClass.HANG: Action.FAIL})
    policy = Policy(config, ledger, clock)
    hang = decide(
        policy, clock, source="progress", reason="LogSilence", fault_class=FaultClass.HANG
    )
    assert hang.action is Action.FAIL and policy.state == "failing"
    assert decide(policy, clock).action is Action.NONE
    decision = policy.decide(exited(clock, signal=15))
    assert (decision.action, decision.verdict) == (Action.NONE, "release")


def test_hardware_without_api_fails_never_restarts(ledger: Ledger, clock: FakeClock) -> None:
    decision = decide(Policy(LAUNCHED, ledger, clock), clock, fault_class=FaultClass.HARDWARE)
    assert decision.action is Action.FAIL
    assert "eviction needs the Kubernetes API; failing the Pod" in decision.explanation


def test_dry_run_never_keeps_the_workload(ledger: Ledger, clock: FakeClock) -> None:
    policy = Policy(replace(LAUNCHED, dry_run=True), ledger, clock)
    decision = policy.decide(exited(clock, code=1))
    assert decision.dry_run and decision.action is Action.RESTART
    assert decision.verdict == "release"


def test_the_back_off_doubles_and_is_counted_from_the_last_restart(
    ledger: Ledger, clock: FakeClock
) -> None:
    config = budget(LAUNCHED, backoff=10, backoff_max=300, max_restarts=10)
    assert [backoff_for(config.budget, n) for n in range(7)] == [0, 10, 20, 40, 80, 160, 300]
    assert decide(Policy(config, ledger, clock), clock).delay_s == 0
    restarted(ledger, clock, ago=4)
    first = decide(Policy(config, ledger, clock), clock)
    assert first.action is Action.RESTART
    assert first.delay_s == pytest.approx(6)
    assert "after a back-off of 6s" in first.explanation
    restarted(ledger, clock, ago=1)
    second = decide(Policy(config, ledger, clock), clock)
    assert second.delay_s == pytest.approx(19)
    assert decide(Policy(budget(config, backoff=0), ledger, clock), clock).delay_s == 0


def test_every_in_place_restart_counts_once(ledger: Ledger, clock: FakeClock) -> None:
    policy = Policy(LAUNCHED, ledger, clock)
    assert policy.decide(started(clock, 1)).action is Action.NONE
    asked = LedgerEntry("restart", "X", clock.wall(), details={"launcher_start": 1})
    ledger.append(asked)
    assert policy.decide(started(clock, 2)).action is Action.NONE  # the one we asked for
    observed = policy.decide(started(clock, 3))
    assert observed.action is Action.COUNT
    assert observed.details == {"launcher_start": 2, "observed_start": 3}
    ledger.append(LedgerEntry("restart", "Observed", clock.wall(), details=observed.details))
    assert policy.decide(started(clock, 3)).action is Action.NONE  # replayed at a restart


def test_a_not_taken_restart_leaves_the_budget(ledger: Ledger, clock: FakeClock) -> None:
    for ago in (300, 200, 100):
        restarted(ledger, clock, ago)
    last = ledger.entries[-1]
    ledger.append(LedgerEntry("not_taken", last.reason, clock.wall(), details={"ref": last.id}))
    decision = decide(Policy(LAUNCHED, ledger, clock), clock)
    assert (decision.action, decision.details["restarts_in_window"]) == (Action.RESTART, 2)


def setback(clock: FakeClock, reason: str) -> Finding:
    return Finding(
        ACTIONS,
        reason,
        Severity.FATAL,
        FaultClass.INFRASTRUCTURE,
        "it went wrong",
        clock.monotonic(),
    )


def test_a_refused_eviction_fails_the_pod(ledger: Ledger, clock: FakeClock) -> None:
    policy = Policy(replace(LAUNCHED, can_evict=True), ledger, clock)
    assert decide(policy, clock, fault_class=FaultClass.HARDWARE).action is Action.EVICT
    decision = policy.decide(setback(clock, EVICTION_REFUSED))
    assert decision.action is Action.FAIL
    assert "EvictionRefused: it went wrong; failing the Pod" in decision.explanation
    assert policy.state == "failing"


def test_a_restart_the_ledger_cannot_record_is_not_taken(ledger: Ledger, clock: FakeClock) -> None:
    policy = Policy(LAUNCHED, ledger, clock)
    assert decide(policy, clock).action is Action.RESTART
    assert policy.decide(setback(clock, RESTART_NOT_RECORDED)).action is Action.FAIL
    assert policy.restarting is None and policy.state == "failing"
    assert policy.decide(setback(clock, RESTART_NOT_RECORDED)).action is Action.NONE
