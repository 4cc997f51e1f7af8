"""Metrics that survive restarts: after an in-place restart, the next process's scrape
shows the restart counted with its reason, from the ledger in the state directory; and
`watcher_monitor_up` follows whether the source answers."""

import signal

import pytest

from tests.e2e.conftest import Spawn
from tests.e2e.workload import BENIGN, COMM_ABORTED, Paths, append, fire_and_exit
from tests.waiting import wait_until

POLL_FAST = {"WATCHER_POLL_INTERVAL": "0.2"}


def actions(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, float]:
    """`watcher_actions_total` as {"action/reason/fault_class": value}."""
    found = {}
    for (name, labels), value in metrics.items():
        if name == "watcher_actions_total":
            by = dict(labels)
            found[f"{by['action']}/{by['reason']}/{by['fault_class']}"] = value
    return found


@pytest.mark.slow
def test_a_restart_is_counted_with_its_reason_by_the_next_process(
    paths: Paths, spawn: Spawn
) -> None:
    first = spawn(**POLL_FAST)
    first.wait_ready()
    assert actions(first.metrics()) == {}
    assert fire_and_exit(first, paths) == 88
    [restart] = paths.ledger_entries("restart")

    second = spawn(**POLL_FAST)
    second.wait_ready()
    assert second.status()["start"]["mode"] == "after_restart"
    metrics = second.metrics()
    assert actions(metrics) == {"restart/NcclWatchdogTimeout/transient": 1}
    last = metrics[("watcher_last_action_timestamp_seconds", (("action", "restart"),))]
    assert last == pytest.approx(restart["time"])
    assert metrics[("watcher_restarts_in_window", ())] == 1
    # this process decided nothing yet: its own decision counter starts again
    assert not [k for k in metrics if k[0] == "watcher_decisions_total"]

    append(paths.log, BENIGN)
    second.wait_scanned(1)
    assert fire_and_exit(second, paths, COMM_ABORTED) == 88
    third = spawn(**POLL_FAST)
    third.wait_ready()
    assert actions(third.metrics()) == {
        "restart/NcclWatchdogTimeout/transient": 1,
        "restart/NcclCommunicatorAborted/transient": 1,
    }
    second_restart = paths.ledger_entries("restart")[-1]["time"]
    last = third.metrics()[("watcher_last_action_timestamp_seconds", (("action", "restart"),))]
    assert last == pytest.approx(second_restart)


@pytest.mark.slow
def test_the_hold_is_counted_and_survives_the_watcher_alone_restarting(
    paths: Paths, spawn: Spawn
) -> None:
    first = spawn(WATCHER_MAX_RESTARTS="0", **POLL_FAST)
    first.wait_ready()
    append(paths.log, COMM_ABORTED + "\n")
    first.wait_status(lambda s: s["state"] == "holding", "state holding")
    # the policy holds at once; the ledger entry follows within the last-words deadline
    held = wait_until(
        lambda: actions(first.metrics()) or None, 5, "the hold counted", first.describe
    )
    assert held == {"hold/NcclCommunicatorAborted/transient": 1}
    assert first.metrics()[("watcher_holding", ())] == 1
    first.signal(signal.SIGTERM)  # a liveness restart: the sidecar alone restarts
    assert first.wait_exit(5.0) == 0

    second = spawn(WATCHER_MAX_RESTARTS="0", **POLL_FAST)
    second.wait_ready()
    assert second.status()["start"]["mode"] == "resume"
    assert actions(second.metrics()) == {"hold/NcclCommunicatorAborted/transient": 1}
    assert len(paths.ledger_entries("hold")) == 1


@pytest.mark.slow
def test_the_log_monitor_is_up_only_while_it_follows_a_file(paths: Paths, spawn: Spawn) -> None:
    paths.log.unlink()
    watcher = spawn(WATCHER_ROTATE_WAIT="0.5", **POLL_FAST)
    watcher.wait_ready()
    up = ("watcher_monitor_up", (("monitor", "log"),))
    assert watcher.metrics()[up] == 0
    assert watcher.get("/healthz")[0] == 200  # no file yet is not the watcher's fault
    append(paths.log, BENIGN)
    wait_until(lambda: watcher.metrics()[up] == 1, 5, "log monitor up", watcher.describe)
    paths.log.unlink()
    wait_until(lambda: watcher.metrics()[up] == 0, 10, "log monitor down", watcher.describe)
