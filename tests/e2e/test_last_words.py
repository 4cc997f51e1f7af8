"""The reason survives the restart, the exit keeps its deadline whatever the API does, and
a SIGTERM during the last words leaves no restart behind: `pod-watcher run` against the
fake Kubernetes API (which validates every body it receives)."""

import json
import signal
import time
from datetime import UTC, datetime

import pytest

from tests.e2e.conftest import Spawn
from tests.e2e.workload import NCCL_TIMEOUT, Paths, append
from tests.kube.api_answers import Mode
from tests.kube.fake_api import ThreadedFakeApi
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


def annotations(fake: ThreadedFakeApi) -> dict[str, str]:
    return dict(fake.api.pod()["metadata"].get("annotations") or {})


def test_the_reason_of_a_restart_is_annotated_and_announced(
    paths: Paths,
    spawn: Spawn,
    api: ThreadedFakeApi,
    kube_env: dict[str, str],
) -> None:
    watcher = spawn(**kube_env)
    watcher.wait_ready()
    append(paths.log, NCCL_TIMEOUT + "\n")
    assert watcher.wait_exit() == 88
    [entry] = paths.ledger_entries("restart")
    last = json.loads(annotations(api)["pod-watcher.io/last-restart"])
    assert (last["reason"], last["rule"], last["action"]) == ("NcclWatchdogTimeout",) * 2 + (
        "restart",
    )
    assert last["restart"] == 1 and last["ledger_id"] == entry["id"]
    assert last["evidence"] == NCCL_TIMEOUT
    stamp = datetime.strptime(last["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(stamp.timestamp() - entry["time"]) < 1.0
    assert json.loads(annotations(api)["pod-watcher.io/last-action"])["ledger_id"] == entry["id"]
    assert [e["reason"] for e in api.api.events] == ["RestartingAllContainers"]

    # the next start (the restart-all replaced every container's last state with 137)
    after = spawn(**kube_env)
    after.wait_ready()
    status = after.status()
    assert status["last_restart"]["reason"] == "NcclWatchdogTimeout"
    assert status["last_restart"]["evidence"] == [NCCL_TIMEOUT]
    assert status["budget"]["restarts_in_window"] == 1


@pytest.mark.parametrize("api_timeout", ["6", "30"])
def test_the_exit_deadline_holds_with_the_api_stalled(
    paths: Paths,
    spawn: Spawn,
    api: ThreadedFakeApi,
    kube_env: dict[str, str],
    api_timeout: str,
) -> None:
    """Every call the last words make (the Event, the annotation) hangs: the exit still
    comes within WATCHER_LAST_WORDS_TIMEOUT of the decision (plus the exit's own slack)."""
    for route in ("events", "pods.patch"):
        api.api.set_mode(route, Mode.STALL)
    env = {**kube_env, "WATCHER_API_TIMEOUT": api_timeout, "WATCHER_LAST_WORDS_TIMEOUT": "1"}
    watcher = spawn(**env)
    watcher.wait_ready()
    append(paths.log, NCCL_TIMEOUT + "\n")
    decided = wait_until(
        lambda: watcher.find(lambda r: r.get("event") == "decision"), 5, "a decision"
    )
    assert watcher.wait_exit(5.0) == 88
    exited = time.time()
    took = exited - datetime.fromisoformat(str(decided["ts"]).replace("Z", "+00:00")).timestamp()
    assert took < 1.0 + 0.1 + 0.3, f"{took:.3f}s from the decision to the exit"  # 0.3: ms ts, polls
    assert paths.ledger_entries("restart")
    assert "NcclWatchdogTimeout" in paths.termination.read_text("utf-8")


def test_a_sigterm_during_slow_last_words_leaves_no_restart(
    paths: Paths,
    spawn: Spawn,
    api: ThreadedFakeApi,
    kube_env: dict[str, str],
) -> None:
    """The Pod is being deleted while the watcher writes its last words: it exits 0, the
    ledger says the recorded restart was not taken (so the budget leaves it out), and the
    termination message no longer says 88."""
    api.api.set_mode("events", Mode.STALL)
    watcher = spawn(**{**kube_env, "WATCHER_API_TIMEOUT": "10", "WATCHER_LAST_WORDS_TIMEOUT": "5"})
    watcher.wait_ready()
    append(paths.log, NCCL_TIMEOUT + "\n")
    wait_until(lambda: paths.ledger_entries("restart") or None, 5, "the restart entry")
    watcher.signal(signal.SIGTERM)
    assert watcher.wait_exit(5.0) == 0
    [restart] = paths.ledger_entries("restart")
    [undo] = paths.ledger_entries("not_taken")
    assert undo["details"]["ref"] == restart["id"]
    message = paths.termination.read_text("utf-8")
    assert (
        "stopped (SIGTERM) during the last words" in message
        and "exit 88" not in message.split("\n")[0]
    )
