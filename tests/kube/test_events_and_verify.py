"""Events from decisions, their dedup and rate limit, eviction outcomes, restart verification."""

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeClock
from watcher.actions.actions import Actions
from watcher.actions.contract import ActionConfig
from watcher.kube.client import ApiError, PodRef
from watcher.kube.event_reporter import QUEUE, EventReporter
from watcher.kube.events import BURST, DEDUP_WINDOW, EventPoster, PodEvent, event_for
from watcher.kube.monitor import KubeMonitor, restart_verdict
from watcher.state.ledger import Ledger
from watcher.types import Action, Decision, FaultClass, Finding, Severity

FINDING = Finding(
    "log", "XidGpuFallenOffBus", Severity.FATAL, FaultClass.HARDWARE, "GPU lost", 1.0,
    ("NVRM: Xid (PCI:0000:3b:00): 79, GPU has fallen off the bus.",), "/logs/kern.log", 10,
)  # fmt: skip


class FakeApi:
    """Records what the watcher sends; refuses or fails on demand."""

    def __init__(self, pod: dict[str, Any] | None = None) -> None:
        self.pod = PodRef("trainer-0", "ml")
        self.pod_uid: str | None = "u-1"
        self.timeout = 1.0
        self.events: list[dict[str, Any]] = []
        self.evictions = 0
        self.fail: ApiError | None = None
        self.evict_error: ApiError | None = None
        self.pod_object = pod or {"metadata": {"uid": "u-1"}, "spec": {}, "status": {}}

    async def read_pod(self) -> dict[str, Any]:
        if self.fail:
            raise self.fail
        return self.pod_object

    async def create_event(self, body: dict[str, Any]) -> None:
        if self.fail:
            raise self.fail
        self.events.append(body)

    async def evict(self) -> None:
        if self.evict_error:
            raise self.evict_error
        self.evictions += 1


def decision(action: Action, dry: bool = False) -> Decision:
    return Decision(action, FINDING, "XidGpuFallenOffBus (hardware): evicting the Pod", dry)


def test_event_for_each_decision() -> None:
    restart = event_for(decision(Action.RESTART), 88)
    assert restart is not None and restart.reason == "RestartingAllContainers"
    assert "Exiting 88" in restart.message and "/logs/kern.log" in restart.message
    assert event_for(decision(Action.EVICT), 88) == PodEvent(
        "EvictingPod",
        restart.message.split(". Exiting")[0]
        + ". XidGpuFallenOffBus (hardware): evicting the Pod.",
        key="XidGpuFallenOffBus",
    )
    dry = event_for(decision(Action.RESTART, dry=True), 88)
    assert dry is not None and dry.reason == "WouldRestartAllContainers"
    held = event_for(decision(Action.HOLD), 88)
    assert held is not None and held.reason == "WatcherHolding"
    assert event_for(decision(Action.WARN), 88) is None
    wiring = replace(FINDING, source="kubernetes", reason="RestartRuleMissing", message="no rule")
    warned = event_for(Decision(Action.WARN, wiring, "warning"), 88)
    assert warned == PodEvent("RestartRuleMissing", "no rule.", key="RestartRuleMissing")
    nothing = replace(FINDING, source="log", reason="LogGlobMatchesNothing", message="no file")
    glob = event_for(Decision(Action.WARN, nothing, "warning"), 88)
    assert glob == PodEvent("LogGlobMatchesNothing", "no file.", key="LogGlobMatchesNothing")
    noise = replace(FINDING, source="log", reason="NcclWarn", message="a warning line")
    assert event_for(Decision(Action.WARN, noise, "warning"), 88) is None


async def test_event_body_dedup_and_rate_limit(clock: FakeClock) -> None:
    api = FakeApi()
    poster = EventPoster(api, clock, "pod-watcher")  # type: ignore[arg-type]
    event = PodEvent("RestartingAllContainers", "x" * 2000, key="A")
    assert await poster.post(event)
    assert not await poster.post(event)  # same reason and key: deduplicated
    (body,) = api.events
    assert body["involvedObject"] == {
        "apiVersion": "v1", "kind": "Pod", "name": "trainer-0", "namespace": "ml",
        "fieldPath": "spec.initContainers{pod-watcher}", "uid": "u-1",
    }  # fmt: skip
    assert len(body["message"]) == 1024
    assert body["type"] == "Warning"
    clock.advance(DEDUP_WINDOW)
    assert await poster.post(event)
    for index in range(BURST * 2):
        await poster.post(PodEvent("WatcherHolding", "m", key=str(index)))
    assert len(api.events) == 1 + BURST  # the first aged out of the rate window
    api.fail = ApiError("create Event: 500 Internal Server Error", 500)
    clock.advance(DEDUP_WINDOW)
    assert not await poster.post(PodEvent("Other", "m"))
    assert poster.failed == 1


def make_actions(tmp_path: Path, clock: FakeClock, api: FakeApi) -> tuple[Actions, EventReporter]:
    events = EventReporter(EventPoster(api, clock, "pod-watcher"), 88)  # type: ignore[arg-type]
    actions = Actions(
        ActionConfig(88, None, 1.0), ledger=Ledger(tmp_path, clock=clock), clock=clock,
        save_cursors=lambda: (lambda: None), events=events.drain, evict=api.evict,
    )  # fmt: skip
    return actions, events


async def test_eviction_is_announced_requested_and_recorded(
    tmp_path: Path, clock: FakeClock
) -> None:
    """The Events reporter gets the decision first (as the watcher fans it out), and the
    eviction waits, within the deadline, until its Event was posted."""
    api = FakeApi()
    actions, events = make_actions(tmp_path, clock, api)
    evicting = decision(Action.EVICT)
    events.decision(evicting)
    try:
        outcome = await actions.carry_out(evicting)
    finally:
        await events.close()
    assert outcome.exit_code is None and outcome.setback is None
    assert api.evictions == 1
    assert [e["reason"] for e in api.events] == ["EvictingPod"]
    ledger = Ledger(tmp_path)
    ledger.load()
    assert [e.action for e in ledger.entries] == ["evict"]


async def test_the_events_queue_never_waits_and_is_bounded(clock: FakeClock) -> None:
    api = FakeApi()
    events = EventReporter(EventPoster(api, clock, "pod-watcher"), 88)  # type: ignore[arg-type]
    try:
        for index in range(QUEUE + 5):
            events.decision(
                replace(decision(Action.HOLD), finding=replace(FINDING, reason=f"R{index}"))
            )
        assert events.dropped == 5
        await events.drain(1.0)
    finally:
        await events.close()
    assert len(api.events) == BURST  # the poster's own rate limit, after the queue


@pytest.mark.parametrize("status", [403, 429])
async def test_a_refused_eviction_goes_back_to_the_policy(
    tmp_path: Path, clock: FakeClock, status: int
) -> None:
    api = FakeApi()
    api.evict_error = ApiError(f"evict own Pod: {status} refused", status)  # RBAC 403, PDB 429
    actions, events = make_actions(tmp_path, clock, api)
    outcome = await actions.carry_out(decision(Action.EVICT))
    await events.close()
    assert outcome.exit_code is None and outcome.setback is not None
    assert (outcome.setback.source, outcome.setback.reason) == ("actions", "EvictionRefused")
    assert f"the API refused: evict own Pod: {status} refused" in outcome.setback.message
    ledger = Ledger(tmp_path)
    ledger.load()
    assert ledger.entries == []  # nothing happened: the policy decides what comes next


def pod(*containers: tuple[str, str, str | None]) -> dict[str, Any]:
    statuses = []
    for name, state, started in containers:
        body: dict[str, Any] = (
            {"running": {"startedAt": started}} if state == "running" else {"waiting": {}}
        )
        statuses.append({"name": name, "state": body, "restartCount": 1})
    return {
        "spec": {"initContainers": [{"name": "pod-watcher"}]},
        "status": {"containerStatuses": statuses},
    }


def test_restart_verdict() -> None:
    exit_at = 1_800_000_100.0
    before, after = "2027-01-15T08:00:00Z", "2027-01-15T08:05:00Z"  # 1_800_000_000 is 08:00:00Z
    assert (
        restart_verdict(pod(("trainer", "running", after)), "pod-watcher", exit_at) == "restarted"
    )
    assert restart_verdict(pod(("trainer", "waiting", None)), "pod-watcher", exit_at) is None
    stale = restart_verdict(pod(("trainer", "running", before)), "pod-watcher", exit_at)
    assert stale is not None and "'trainer' has been running since before" in stale


async def test_monitor_reports_wiring_and_an_ineffective_restart(clock: FakeClock) -> None:
    watcher = {"name": "pod-watcher", "restartPolicy": "Always", "startupProbe": {}}
    spec = {"initContainers": [watcher]}
    started = "2027-01-15T08:00:00Z"
    api = FakeApi({**pod(("trainer", "running", started)), "spec": spec, "metadata": {"uid": "u"}})
    found: list[Finding] = []
    monitor = KubeMonitor(
        api, clock, container="pod-watcher", exit_code=88,  # type: ignore[arg-type]
        restarted_at=1_800_000_100.0, verify_timeout=5,
    )  # fmt: skip
    await monitor.run(found.append)
    assert [(f.reason, f.severity) for f in found] == [
        ("RestartRuleMissing", Severity.WARNING),
        ("InPlaceRestartIneffective", Severity.FATAL),
    ]
    assert found[1].fault_class is FaultClass.PLATFORM
    assert monitor.status()["restart_verification"].startswith("container 'trainer'")
