"""`pod-watcher run` against a fake Kubernetes API that validates everything it receives:
Events, eviction, the wiring check, restart verification, and a sick API server."""

import copy
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import Spawn, launched_from
from tests.e2e.workload import NCCL_TIMEOUT, Paths, append
from tests.kube.api_answers import Mode
from tests.kube.fake_api import ThreadedFakeApi
from tests.kube.manifests import TRAINER, WATCHER, running_pod
from tests.waiting import wait_until

XID_79 = (
    "[ 8123.456789] NVRM: Xid (PCI:0000:4f:00): 79, pid=48213, name=python, "
    "GPU has fallen off the bus."
)


def reasons(api: ThreadedFakeApi) -> list[str]:
    return [str(event["reason"]) for event in api.api.events]


def without_rule(pod: dict[str, Any], rule: dict[str, Any] | None) -> dict[str, Any]:
    pod = copy.deepcopy(pod)
    for container in pod["spec"]["initContainers"]:
        if container["name"] == WATCHER:
            container["restartPolicyRules"] = [] if rule is None else [rule]
            if rule is None:
                del container["restartPolicyRules"]
    return pod


def restart_once(spawn: Spawn, paths: Paths, kube_env: dict[str, str]) -> None:
    """A first watcher that exits 88 on a fatal line: the ledger now holds a restart."""
    first = spawn(**kube_env)
    first.wait_ready()
    append(paths.log, NCCL_TIMEOUT + "\n")
    assert first.wait_exit() == 88


@pytest.mark.slow
def test_fatal_line_posts_an_event_then_exits_88(
    paths: Paths, spawn: Spawn, api: ThreadedFakeApi, kube_env: dict[str, str]
) -> None:
    watcher = spawn(**kube_env)
    watcher.wait_ready()
    assert watcher.status()["monitors"]["kubernetes"]["wiring_problems"] == []
    append(paths.log, NCCL_TIMEOUT + "\n")
    assert watcher.wait_exit() == 88
    (event,) = api.api.events
    assert event["reason"] == "RestartingAllContainers"
    assert "NcclWatchdogTimeout" in event["message"] and "Exiting 88" in event["message"]
    assert event["involvedObject"]["uid"] == api.api.pod()["metadata"]["uid"]
    assert api.api.evictions == []


@pytest.mark.slow
@pytest.mark.parametrize("mode", [Mode.STALL, Mode.ERROR, Mode.FORBIDDEN])
def test_a_sick_api_never_delays_the_exit_past_its_deadline(
    paths: Paths, spawn: Spawn, api: ThreadedFakeApi, kube_env: dict[str, str], mode: Mode
) -> None:
    api.api.set_mode("events", mode)
    watcher = spawn(**kube_env)
    watcher.wait_ready()
    started = time.monotonic()
    append(paths.log, NCCL_TIMEOUT + "\n")
    assert watcher.wait_exit() == 88
    took = time.monotonic() - started
    assert took < 1.0 + 1.0, f"exit took {took:.2f}s with the API answering {mode}"
    assert paths.ledger_entries("restart") and paths.termination.exists()


@pytest.mark.slow
def test_hardware_fault_evicts_the_pod_and_does_not_exit(
    paths: Paths, spawn: Spawn, api: ThreadedFakeApi, kube_env: dict[str, str]
) -> None:
    watcher = spawn(**kube_env)
    watcher.wait_ready()
    append(paths.log, XID_79 + "\n")
    wait_until(lambda: api.api.evictions or None, 5, "the eviction", watcher.describe)
    (eviction,) = api.api.evictions
    assert eviction["metadata"]["name"] == TRAINER
    status = watcher.wait_status(lambda s: s["state"] == "evicting", "evicting")
    assert "XidGpuFallenOffBus" in status["stopped_acting"]
    assert reasons(api) == ["EvictingPod"]
    [entry] = wait_until(lambda: paths.ledger_entries("evict") or None, 5, "the evict entry")
    assert entry["exit_code"] is None
    watcher.assert_stays_alive(1.0)
    assert paths.ledger_entries("restart") == []


@pytest.mark.slow
def test_a_refused_eviction_fails_the_pod_and_says_why(
    paths: Paths, spawn: Spawn, api: ThreadedFakeApi, kube_env: dict[str, str]
) -> None:
    """The policy decides what a refused eviction leads to: fail (with the launcher)."""
    api.api.set_mode("eviction", Mode.TOO_MANY)
    watcher = spawn(**kube_env)
    watcher.wait_ready()
    append(paths.log, XID_79 + "\n")
    status = watcher.wait_status(lambda s: s["state"] == "failing", "failing")
    assert "EvictionRefused: the API refused: evict own Pod: 429" in status["stopped_acting"]
    wait_until(lambda: "FailingPod" in reasons(api) or None, 5, "the fail Event")
    assert reasons(api) == ["EvictingPod", "FailingPod"]
    watcher.assert_stays_alive(0.5)


def test_a_refused_eviction_holds_without_the_launcher(
    paths: Paths, spawn: Spawn, api: ThreadedFakeApi, kube_env: dict[str, str]
) -> None:
    api.api.set_mode("eviction", Mode.TOO_MANY)
    api.api.set_pod(running_pod(TRAINER, "default"))
    env = {k: v for k, v in kube_env.items() if k != "WATCHER_LAUNCHER_DIR"}
    watcher = spawn(**env)
    watcher.wait_ready()
    append(paths.log, XID_79 + "\n")
    status = watcher.wait_status(lambda s: s["state"] == "holding", "holding")
    assert "failing the Pod needs the launcher (WATCHER_LAUNCHER_DIR): holding" in status["holding"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    [
        (None, "RestartRuleMissing"),
        (
            {"action": "RestartAllContainers", "exitCodes": {"operator": "NotIn", "values": [0]}},
            "RestartRuleNotIn",
        ),
    ],
)
def test_miswired_pod_is_reported_at_start(
    spawn: Spawn,
    api: ThreadedFakeApi,
    kube_env: dict[str, str],
    case: tuple[dict[str, Any] | None, str],
) -> None:
    rule, reason = case
    api.api.set_pod(launched_from(without_rule(running_pod(), rule), kube_env))
    watcher = spawn(**kube_env)
    watcher.wait_ready()
    problems = watcher.status()["monitors"]["kubernetes"]["wiring_problems"]
    assert [p["reason"] for p in problems] == [reason]
    wait_until(lambda: reason in reasons(api) or None, 5, f"the {reason} Event")
    metrics = watcher.metrics()
    key = ("fault_class", "infrastructure"), ("reason", reason), ("severity", "warning")
    assert metrics[("watcher_findings_total", (*key, ("source", "kubernetes")))] == 1
    assert watcher.alive()


@pytest.mark.slow
def test_restart_that_left_the_trainer_running_is_caught_and_evicted(
    paths: Paths, spawn: Spawn, api: ThreadedFakeApi, kube_env: dict[str, str]
) -> None:
    restart_once(spawn, paths, kube_env)
    pod = running_pod()  # an old kubelet: only the sidecar restarted, the trainer never did
    long_ago = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for status in pod["status"]["containerStatuses"]:
        status["state"] = {"running": {"startedAt": long_ago}}
    api.api.set_pod(launched_from(pod, kube_env))
    second = spawn(**kube_env)
    second.wait_ready()
    wait_until(lambda: api.api.evictions or None, 10, "the fallback eviction", second.describe)
    verdict = second.status()["monitors"]["kubernetes"]["restart_verification"]
    assert "'trainer' has been running since before the restart" in verdict
    assert second.alive()


@pytest.mark.slow
def test_a_restart_that_worked_is_verified(
    paths: Paths, spawn: Spawn, api: ThreadedFakeApi, kube_env: dict[str, str]
) -> None:
    restart_once(spawn, paths, kube_env)
    api.api.set_pod(launched_from(running_pod(restarts=1), kube_env))  # all started after the exit
    second = spawn(**kube_env)
    second.wait_ready()
    second.wait_status(
        lambda s: s["monitors"]["kubernetes"]["restart_verification"] == "restarted",
        "the verification",
    )
    assert api.api.evictions == []


def test_without_api_access_the_features_are_off_with_one_line(paths: Paths, spawn: Spawn) -> None:
    watcher = spawn(WATCHER_POD_NAME=TRAINER)
    watcher.wait_ready()
    off = [r for r in watcher.records if "Kubernetes features off" in str(r.get("msg"))]
    assert len(off) == 1
    assert "kubernetes" not in watcher.status()["monitors"]
