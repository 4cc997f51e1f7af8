"""State fails closed, against the real process: with a full state volume, exhausted
descriptors or a deleted state directory, exits with the restart code never exceed
the budget; corrupt or unreadable state never crashes; a stepped clock holds nothing.

A watcher that is "restarted in place" here is simply started again on the same
files, as the kubelet would after exit 88.
"""

import json
import resource
import shutil
import time

import pytest

from tests.e2e.conftest import Spawn
from tests.e2e.process import WatcherProcess, module_command
from tests.e2e.workload import NCCL_TIMEOUT, Paths, append
from tests.state.volumes import fill, make_eio, small_volume
from tests.waiting import wait_until

BUDGET = 3
FAULTS = 6


def outcome(watcher: WatcherProcess, *, hold_recorded: bool = False) -> int | None:
    """The exit code once the watcher exits, or None once it holds (and, if asked, once
    its hold entry is in the ledger); a holding watcher is then stopped."""

    def decided() -> tuple[int | None] | None:
        code = watcher.proc.poll()
        if code is not None:
            return (code,)
        try:
            status = watcher.status()
        except OSError:  # exiting right now
            return None
        recorded = any(entry["action"] == "hold" for entry in status["ledger"])
        holding = status["state"] == "holding" and (recorded or not hold_recorded)
        return (None,) if holding else None

    (code,) = wait_until(decided, 5.0, "an exit or a hold", watcher.describe)
    if code is None:
        watcher.close()
    return code


def one_fault(spawn: Spawn, paths: Paths) -> int | None:
    """Start a watcher, write a fatal line: its exit code, or None if it held."""
    watcher = spawn(WATCHER_MAX_RESTARTS=str(BUDGET))
    watcher.wait_ready()
    append(paths.log, NCCL_TIMEOUT + "\n")
    return outcome(watcher)


def restarts_recorded(paths: Paths) -> int:
    return len(paths.ledger_entries("restart")) if paths.ledger.exists() else 0


@pytest.mark.slow
def test_a_full_state_volume_never_exits_88_more_than_the_budget(
    paths: Paths, spawn: Spawn
) -> None:
    """The volume is full before the first start: the ledger gets no page at all."""
    with small_volume(paths.state):
        fill(paths.state)
        codes = [one_fault(spawn, paths) for _ in range(FAULTS)]
        assert codes.count(88) <= BUDGET, codes
        assert codes.count(88) == restarts_recorded(paths), codes


@pytest.mark.slow
def test_a_full_state_volume_records_the_first_restart_on_the_reserve(
    paths: Paths, spawn: Spawn
) -> None:
    with small_volume(paths.state):
        watcher = spawn(WATCHER_MAX_RESTARTS=str(BUDGET))
        watcher.wait_ready()
        fill(paths.state)
        append(paths.log, NCCL_TIMEOUT + "\n")
        assert watcher.wait_exit(3.0) == 88
        assert restarts_recorded(paths) == 1
        again = spawn(WATCHER_MAX_RESTARTS=str(BUDGET))
        again.wait_ready()
        state = again.status()["monitors"]["state"]
        assert state["volume_free_bytes"] < 64 << 10
        assert state["ledger"]["reserve"].startswith("unavailable")
        assert "StateVolumeFull" in state["problems"]


def few_descriptors(limit: int) -> list[str]:
    if shutil.which("prlimit") is None:
        pytest.skip("needs prlimit (util-linux) to lower the watcher's descriptor limit")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return ["prlimit", f"--nofile={limit}:{hard}", *module_command()]


@pytest.mark.slow
def test_exhausted_descriptors_never_exit_88_more_than_the_budget(
    paths: Paths, spawn: Spawn
) -> None:
    """A descriptor limit of 160 and 300 log files: before, the log files took every
    descriptor and each fault exited 88 with no ledger entry (5 of 5 exits, 0 entries)."""
    for number in range(300):
        append(paths.logs / f"rank{number:03}.log", "started\n")
    first = paths.logs / "rank000.log"
    codes: list[int | None] = []
    for _ in range(BUDGET + 1):
        watcher = spawn(few_descriptors(160), WATCHER_MAX_RESTARTS=str(BUDGET))
        watcher.wait_ready()
        refused = watcher.status()["monitors"]["log"]["not_followed"]["by_kind"]
        assert refused["descriptors"] > 0
        append(first, NCCL_TIMEOUT + "\n")
        codes.append(outcome(watcher))
    assert codes.count(88) == BUDGET, codes
    assert restarts_recorded(paths) == BUDGET


@pytest.mark.slow
def test_a_state_dir_deleted_while_running_keeps_the_budget(paths: Paths, spawn: Spawn) -> None:
    codes: list[int | None] = []
    for _ in range(BUDGET + 1):
        watcher = spawn(WATCHER_MAX_RESTARTS=str(BUDGET))
        watcher.wait_ready()
        shutil.rmtree(paths.state)
        append(paths.log, NCCL_TIMEOUT + "\n")
        codes.append(outcome(watcher, hold_recorded=True))
    assert codes.count(88) == BUDGET, codes
    assert restarts_recorded(paths) == BUDGET


CORRUPT = [
    "null",
    "42",
    '{"action": "restart", "reason": "R", "time": "2026-11-26T10:00:00Z"}',
    '{"action": "restart", "reason": "R", "time": 1.0, "evidence": 7}',
    "[" * 50_000 + "]" * 50_000,
]


@pytest.mark.slow
def test_a_corrupt_ledger_is_skipped_counted_and_shown(paths: Paths, spawn: Spawn) -> None:
    paths.state.mkdir()
    paths.ledger.write_text("\n".join(CORRUPT) + "\n" + '{"torn": ', "utf-8")
    watcher = spawn()
    watcher.wait_ready()  # before: exit 1 at every start
    ledger = watcher.status()["monitors"]["state"]["ledger"]
    assert ledger["skipped_lines"] == len(CORRUPT) + 1
    watcher.wait_log(lambda r: r.get("reason") == "LedgerCorrupt", 5.0, "the warning")
    append(paths.log, NCCL_TIMEOUT + "\n")
    assert watcher.wait_exit(3.0) == 88
    last = paths.ledger.read_text("utf-8").splitlines()[-1]
    assert json.loads(last)["reason"] == "NcclWatchdogTimeout"  # on a line of its own


@pytest.mark.slow
def test_a_ledger_whose_reads_fail_with_eio_is_reported(paths: Paths, spawn: Spawn) -> None:
    paths.state.mkdir()
    make_eio(paths.ledger)
    watcher = spawn()
    watcher.wait_ready()  # before: exit 1 at every start
    state = watcher.status()["monitors"]["state"]
    assert state["ledger"]["read_error"] == "Input/output error"
    record = watcher.wait_log(lambda r: r.get("reason") == "LedgerUnreadable", 5.0, "warning")
    assert record["level"] == "warning"


@pytest.mark.slow
def test_an_entry_from_the_future_does_not_hold_the_next_restart(
    paths: Paths, spawn: Spawn
) -> None:
    """The wall clock was stepped back ten minutes after the last restart."""
    paths.state.mkdir()
    future = {"action": "restart", "reason": "Earlier", "time": time.time() + 600, "id": "r1"}
    paths.ledger.write_text(json.dumps(future) + "\n", "utf-8")
    paths.cursors.write_text('{"acknowledged_restart": "r1", "files": {}}', "utf-8")
    watcher: WatcherProcess = spawn(WATCHER_MIN_UPTIME="0")
    watcher.wait_ready()
    assert watcher.status()["budget"]["restarts_in_window"] == 1
    append(paths.log, NCCL_TIMEOUT + "\n")
    assert watcher.wait_exit(3.0) == 88, watcher.describe()  # before: "-599s ago", holding
