"""An in-place restart, simulated with two containers of one Pod: a trainer that writes
its log into a shared volume and dies with an NCCL timeout every time it starts, and the
watcher, with the state volume. When the watcher exits 88 the test restarts both, as the
kubelet does for RestartAllContainers: the trainer is killed without grace, the watcher
starts first, then the trainer once /readyz answers (the startup probe)."""

from pathlib import Path

import pytest

from tests.container.conftest import RunContainer
from tests.container.podman import Container, Volumes
from tests.e2e.workload import DYING, NCCL_TIMEOUT, append

pytestmark = [pytest.mark.container, pytest.mark.slow]

TRAINER = """
log=/logs/train.log
echo "trainer $(date +%s): resuming from the last checkpoint" >> "$log"
for step in 1 2 3; do echo "step $step | loss 2.3417 | lr 3.0e-04" >> "$log"; done
printf '%s\\n' "$FATAL" >> "$log"
exec sleep 3600
"""
"""A job that hangs in a collective each time: its watchdog prints the timeout, it hangs."""
MAX_RESTARTS = 3


def fatal_offset(log: Path, start: int) -> int:
    """Where the first fatal line at or after ``start`` begins."""
    return start + log.read_bytes()[start:].index(NCCL_TIMEOUT.encode("utf-8"))


def restart_watcher(watcher: Container, volumes: Volumes, restarts: int) -> None:
    """The restarted watcher is ready, knows it was restarted, and ignores the old lines."""
    watcher.start()
    watcher.wait_ready()
    status = watcher.status()
    assert status["start"]["mode"] == "after_restart"
    assert status["budget"]["restarts_in_window"] == restarts
    assert len(volumes.ledger("restart")) == restarts  # the ledger survived
    # The log holds every earlier fatal line and the dying job's last errors: more than
    # three safety-net ticks later (WATCHER_POLL_INTERVAL=0.2) nothing has fired.
    status = watcher.assert_quiet(0.7)
    assert status["monitors"]["log"]["lines_scanned"] == 0
    assert watcher.running()


def test_in_place_restarts_until_the_budget_holds(
    containers: RunContainer, volumes: Volumes
) -> None:
    log = volumes.logs / "train.log"
    watcher = containers(
        "watcher",
        "-p", "127.0.0.1::9188",
        "-e", "WATCHER_POLL_INTERVAL=0.2",
        *volumes.watcher_mounts(),
    )  # fmt: skip
    watcher.wait_ready()
    assert watcher.status()["start"]["mode"] == "fresh"
    trainer_options = ("--entrypoint", "/bin/sh", "-v", f"{volumes.logs}:/logs")
    trainer = containers(
        "trainer", *trainer_options, "-e", f"FATAL={NCCL_TIMEOUT}", command=["-c", TRAINER]
    )
    before = 0
    for restart in range(1, MAX_RESTARTS + 1):
        assert watcher.wait_exit(10.0) == 88, watcher.logs() + trainer.logs()
        restarts = volumes.ledger("restart")
        assert len(restarts) == restart
        assert restarts[-1]["evidence"] == [NCCL_TIMEOUT]
        assert restarts[-1]["offset"] == fatal_offset(log, before)  # the new line, no old one
        message = volumes.termination.read_text("utf-8")
        assert f"restart {restart} of at most {MAX_RESTARTS}" in message
        # The dying job's last errors, then the kubelet kills it without a grace period.
        append(log, DYING)
        trainer.signal("KILL")
        assert trainer.wait_exit(10.0) == 137

        restart_watcher(watcher, volumes, restarts=restart)
        before = log.stat().st_size
        trainer.start()

    # The fourth fault: the budget is spent, so the watcher holds instead of exiting.
    status = watcher.wait_status(lambda s: s["state"] == "holding", "state holding")
    assert "restart budget exhausted" in status["holding"]
    assert watcher.running()
    [hold] = volumes.ledger("hold")
    assert (hold["reason"], hold["exit_code"]) == ("NcclWatchdogTimeout", None)
    assert hold["offset"] == fatal_offset(log, before)
    assert len(volumes.ledger("restart")) == MAX_RESTARTS
    watcher.signal("TERM")
    assert watcher.wait_exit(10.0) == 0
