"""Dry run and the restart budget, seen from outside: exit codes, /status, ledger, metrics."""

import pytest

from tests.e2e.conftest import Spawn
from tests.e2e.process import WatcherProcess
from tests.e2e.workload import (
    COMM_ABORTED,
    NCCL_ERROR,
    NCCL_TIMEOUT,
    Paths,
    append,
    fire_and_exit,
)
from tests.waiting import wait_until

HOLDING = ("watcher_holding", ())
RESTARTS_IN_WINDOW = ("watcher_restarts_in_window", ())


def restart_in_sequence(spawn: Spawn, paths: Paths, times: int, **env: str) -> None:
    """What the kubelet sees: start, fatal line, exit 88, start again..."""
    for _ in range(times):
        watcher = spawn(**env)
        watcher.wait_ready()
        assert fire_and_exit(watcher, paths) == 88, watcher.describe()
        watcher.close()


def decisions(watcher: WatcherProcess) -> list[dict[str, object]]:
    return list(watcher.status()["recent_decisions"])


@pytest.mark.slow
def test_dry_run_never_exits(paths: Paths, spawn: Spawn) -> None:
    watcher = spawn(WATCHER_DRY_RUN="true")
    watcher.wait_ready()
    assert watcher.status()["state"] == "dry_run"
    append(paths.log, f"{NCCL_TIMEOUT}\n{COMM_ABORTED}\n[rank0]: {NCCL_ERROR}\n")
    expected = {"NcclWatchdogTimeout", "NcclCommunicatorAborted", "NcclError", "DistBackendError"}
    status = watcher.wait_status(
        lambda s: {d["reason"] for d in s["recent_decisions"]} >= expected,
        "four dry-run decisions",
    )
    for decision in status["recent_decisions"]:
        assert decision["action"] == "restart"
        assert decision["dry_run"] is True
        assert "would exit 88" in decision["explanation"]
    append(paths.log, NCCL_TIMEOUT + "\n")
    watcher.wait_status(lambda s: len(s["recent_decisions"]) == 5, "a fifth decision")

    assert watcher.alive()
    assert watcher.get("/healthz")[0] == 200
    assert watcher.status()["state"] == "dry_run"
    metrics = watcher.metrics()
    assert metrics[("watcher_decisions_total", (("action", "restart"), ("dry_run", "true")))] == 5
    assert metrics[HOLDING] == 0
    assert paths.ledger_entries() == []
    assert not paths.termination.exists()
    logged = watcher.find(lambda r: r.get("event") == "decision" and r.get("dry_run") is True)
    assert logged is not None and "would exit 88" in logged["msg"]


@pytest.mark.slow
def test_exhausted_budget_holds(paths: Paths, spawn: Spawn) -> None:
    restart_in_sequence(spawn, paths, 3, WATCHER_MAX_RESTARTS="3")
    assert len(paths.ledger_entries("restart")) == 3
    assert "restart 3 of at most 3" in paths.termination.read_text("utf-8")
    last_words = paths.termination.read_bytes()

    fourth = spawn(WATCHER_MAX_RESTARTS="3")
    fourth.wait_ready()
    status = fourth.status()
    assert status["start"]["mode"] == "after_restart"
    assert status["budget"]["restarts_in_window"] == 3
    assert status["state"] == "watching"
    assert fourth.metrics()[HOLDING] == 0

    append(paths.log, NCCL_TIMEOUT + "\n")
    status = fourth.wait_status(lambda s: s["state"] == "holding", "state holding")
    assert "restart budget exhausted (3 restarts" in status["holding"]
    # the hold is recorded in the ledger just after the decision shows in /status
    [hold] = wait_until(lambda: paths.ledger_entries("hold") or None, 5, "the hold entry")
    assert hold["reason"] == "NcclWatchdogTimeout"
    assert hold["exit_code"] is None
    assert "holding" in hold["explanation"]
    metrics = fourth.metrics()
    assert metrics[HOLDING] == 1
    assert metrics[RESTARTS_IN_WINDOW] == 3
    assert fourth.get("/healthz")[0] == 200
    assert fourth.get("/readyz")[0] == 200

    # Another fatal line while holding: still alive, no second hold entry.
    append(paths.log, COMM_ABORTED + "\n")
    fourth.wait_status(
        lambda s: "already holding" in s["recent_decisions"][-1]["explanation"],
        "a decision while holding",
    )
    fourth.assert_stays_alive(0.3)
    assert len(paths.ledger_entries("hold")) == 1
    assert len(paths.ledger_entries("restart")) == 3
    assert paths.termination.read_bytes() == last_words


@pytest.mark.slow
def test_restarts_older_than_the_window_do_not_count(paths: Paths, spawn: Spawn) -> None:
    env = {"WATCHER_MAX_RESTARTS": "3", "WATCHER_RESTART_WINDOW": "2"}
    restart_in_sequence(spawn, paths, 3, **env)
    fourth = spawn(**env)
    fourth.wait_ready()
    # The budget frees up as the window slides past the earlier restarts.
    fourth.wait_status(lambda s: s["budget"]["restarts_in_window"] == 0, "an empty window")
    assert fire_and_exit(fourth, paths) == 88, fourth.describe()
    assert len(paths.ledger_entries("restart")) == 4
    assert paths.ledger_entries("hold") == []


@pytest.mark.slow
def test_min_uptime_holds_a_restart_too_soon(paths: Paths, spawn: Spawn) -> None:
    env = {"WATCHER_MIN_UPTIME": "600", "WATCHER_BUDGET_EXHAUSTED_ACTION": "evict"}
    restart_in_sequence(spawn, paths, 1, **env)
    second = spawn(**env)
    second.wait_ready()
    append(paths.log, NCCL_TIMEOUT + "\n")
    status = second.wait_status(lambda s: s["state"] == "holding", "state holding")
    assert "min_uptime 600s" in status["holding"]
    assert "eviction needs the Kubernetes API" in status["holding"]
    # the hold is recorded in the ledger just after the decision shows in /status
    wait_until(lambda: paths.ledger_entries("hold") or None, 5, "the hold entry")
    assert [e["action"] for e in paths.ledger_entries()] == ["restart", "hold"]


@pytest.mark.slow
def test_fault_class_configured_to_warn(paths: Paths, spawn: Spawn) -> None:
    watcher = spawn(WATCHER_ACTIONS__TRANSIENT="warn")
    watcher.wait_ready()
    append(paths.log, NCCL_TIMEOUT + "\n")
    status = watcher.wait_status(lambda s: bool(s["recent_decisions"]), "a decision")
    [decision] = status["recent_decisions"]
    assert decision["action"] == "warn"
    assert "configured to warn only" in decision["explanation"]
    assert watcher.alive()
    assert paths.ledger_entries() == []
