"""A fatal line makes the watcher leave its last words and exit with the restart code."""

import json
import signal
import time

import pytest

from tests.e2e.conftest import Spawn
from tests.e2e.process import script_command
from tests.e2e.workload import BENIGN, DYING, NCCL_TIMEOUT, Paths, append, fire_and_exit

POLL_FAST = {"WATCHER_POLL_INTERVAL": "0.2"}


@pytest.mark.slow
def test_fatal_line_exits_88_with_last_words(paths: Paths, spawn: Spawn) -> None:
    append(paths.log, "booting\n")
    watcher = spawn()
    watcher.wait_ready()
    offset = append(paths.log, BENIGN * 3) + len(BENIGN) * 3
    start = time.monotonic()
    append(paths.log, NCCL_TIMEOUT + "\n" + BENIGN)
    code = watcher.wait_exit(5.0)
    latency = time.monotonic() - start
    assert code == 88, watcher.describe()
    assert latency < 2.0, f"exit took {latency:.3f}s"

    message = paths.termination.read_bytes()
    assert len(message) <= 4096
    text = message.decode("utf-8")
    assert "NcclWatchdogTimeout" in text
    assert NCCL_TIMEOUT in text
    assert f"byte {offset}" in text

    [entry] = paths.ledger_entries()
    assert entry["action"] == "restart"
    assert entry["reason"] == "NcclWatchdogTimeout"
    assert entry["file"] == str(paths.log)
    assert entry["offset"] == offset
    assert entry["evidence"] == [NCCL_TIMEOUT]
    assert entry["exit_code"] == 88
    assert entry["id"] in text

    cursors = json.loads(paths.cursors.read_text("utf-8"))
    assert cursors["files"][str(paths.log)]["offset"] == paths.log.stat().st_size
    exiting = watcher.find(lambda r: str(r.get("msg")).startswith("exiting 88: "))
    assert exiting is not None, watcher.describe()
    assert (exiting["reason"], exiting["ledger_id"]) == ("NcclWatchdogTimeout", entry["id"])


@pytest.mark.slow
def test_console_script_and_custom_exit_code(paths: Paths, spawn: Spawn) -> None:
    watcher = spawn(script_command(), WATCHER_RESTART_EXIT_CODE="42")
    watcher.wait_ready()
    assert fire_and_exit(watcher, paths) == 42
    [entry] = paths.ledger_entries()
    assert entry["exit_code"] == 42
    assert "exit 42" in paths.termination.read_text("utf-8")


@pytest.mark.slow
def test_fatal_line_written_in_two_pieces_fires_once_whole(paths: Paths, spawn: Spawn) -> None:
    watcher = spawn(**POLL_FAST)
    watcher.wait_ready()
    half = len(NCCL_TIMEOUT) // 2
    offset = append(paths.log, NCCL_TIMEOUT[:half])
    watcher.wait_status(
        lambda s: s["monitors"]["log"]["files"][0]["pending_bytes"] == half, "the first half"
    )
    assert watcher.alive()
    append(paths.log, NCCL_TIMEOUT[half:] + "\n")
    assert watcher.wait_exit(5.0) == 88
    [entry] = paths.ledger_entries()
    assert (entry["offset"], entry["evidence"]) == (offset, [NCCL_TIMEOUT])


@pytest.mark.slow
def test_fatal_line_in_a_file_created_while_running(paths: Paths, spawn: Spawn) -> None:
    watcher = spawn(**POLL_FAST)
    watcher.wait_ready()
    rank1 = paths.logs / "rank1.log"
    offset = append(rank1, BENIGN + NCCL_TIMEOUT + "\n") + len(BENIGN)  # read from its start
    assert watcher.wait_exit(5.0) == 88
    [entry] = paths.ledger_entries()
    assert (entry["file"], entry["offset"]) == (str(rank1), offset)


@pytest.mark.slow
def test_old_fatal_line_does_not_fire_but_a_new_one_does(paths: Paths, spawn: Spawn) -> None:
    append(paths.log, BENIGN + NCCL_TIMEOUT + "\n" + DYING)
    watcher = spawn(**POLL_FAST)
    watcher.wait_ready()
    start = watcher.status()["start"]
    assert start["mode"] == "fresh"
    watcher.assert_stays_alive(0.7)  # more than three safety-net ticks
    assert watcher.get("/healthz")[0] == 200
    status = watcher.status()
    assert status["recent_findings"] == []
    assert status["monitors"]["log"]["lines_scanned"] == 0

    append(paths.log, BENIGN)
    watcher.wait_scanned(1)
    offset = append(paths.log, NCCL_TIMEOUT + "\n")
    assert watcher.wait_exit(5.0) == 88
    [entry] = paths.ledger_entries()
    assert entry["offset"] == offset


@pytest.mark.slow
def test_in_place_restart_starts_from_the_end(paths: Paths, spawn: Spawn) -> None:
    first = spawn(**POLL_FAST)
    first.wait_ready()
    assert fire_and_exit(first, paths) == 88
    [restart] = paths.ledger_entries("restart")

    # The kubelet restarts every container; the dying workload writes its last errors.
    append(paths.log, DYING)
    second = spawn(**POLL_FAST)
    second.wait_ready()
    assert second.status()["start"]["mode"] == "after_restart"
    second.assert_stays_alive(0.7)
    status = second.status()
    assert status["recent_findings"] == []
    assert status["budget"]["restarts_in_window"] == 1
    cursors = json.loads(paths.cursors.read_text("utf-8"))
    assert cursors["acknowledged_restart"] == restart["id"]

    append(paths.log, BENIGN)
    second.wait_scanned(1)
    offset = append(paths.log, NCCL_TIMEOUT + "\n")
    assert second.wait_exit(5.0) == 88
    restarts = paths.ledger_entries("restart")
    assert len(restarts) == 2
    assert restarts[1]["offset"] == offset
    assert "restart 2 of at most 3" in paths.termination.read_text("utf-8")


@pytest.mark.slow
def test_watcher_alone_restart_resumes_from_its_cursor(paths: Paths, spawn: Spawn) -> None:
    append(paths.log, NCCL_TIMEOUT + "\n" + BENIGN)  # before the first start: never fires
    size = paths.log.stat().st_size
    first = spawn()
    first.wait_ready()
    cursors = json.loads(paths.cursors.read_text("utf-8"))  # saved before `ready`
    assert cursors["files"][str(paths.log)]["offset"] == size
    first.signal(signal.SIGKILL)
    assert first.wait_exit(5.0) == -signal.SIGKILL

    append(paths.log, BENIGN * 2)
    offset = append(paths.log, NCCL_TIMEOUT + "\n" + BENIGN)
    second = spawn()
    assert second.wait_exit(10.0) == 88, second.describe()
    starting = second.wait_msg("starting")
    assert starting["mode"] == "resume"
    [entry] = paths.ledger_entries()
    assert (entry["action"], entry["offset"]) == ("restart", offset)


@pytest.mark.slow
@pytest.mark.parametrize("how", ["created", "rotated"])
def test_resume_reads_a_file_that_appeared_while_down(paths: Paths, spawn: Spawn, how: str) -> None:
    append(paths.log, BENIGN)
    first = spawn()
    first.wait_ready()
    first.signal(signal.SIGKILL)
    first.wait_exit(5.0)

    fresh = paths.logs / "rank1.log"
    if how == "rotated":
        paths.log.rename(paths.logs / "train.log.1")
        fresh = paths.log
    offset = append(fresh, BENIGN + NCCL_TIMEOUT + "\n") + len(BENIGN)
    second = spawn(**POLL_FAST)
    assert second.wait_msg("starting")["mode"] == "resume"
    assert second.wait_exit(2.0) == 88
    [entry] = paths.ledger_entries()
    assert (entry["file"], entry["offset"]) == (str(fresh), offset)


@pytest.mark.slow
def test_resume_reads_what_a_file_gained_before_it_was_rotated(paths: Paths, spawn: Spawn) -> None:
    """The watcher alone was down; the trainer logged its fatal line, then its log was
    rotated. The old inode is read from the saved cursor under its new name."""
    append(paths.log, BENIGN)
    first = spawn()
    first.wait_ready()
    first.signal(signal.SIGKILL)
    first.wait_exit(5.0)

    offset = append(paths.log, NCCL_TIMEOUT + "\n")
    rotated = paths.logs / "train.log.1"
    paths.log.rename(rotated)
    append(paths.log, BENIGN)
    second = spawn()
    assert second.wait_msg("starting")["mode"] == "resume"
    assert second.wait_exit(5.0) == 88, second.describe()
    [entry] = paths.ledger_entries()
    assert (entry["file"], entry["offset"]) == (str(rotated), offset)
    assert f"file: {rotated} (byte {offset})" in paths.termination.read_text("utf-8")


@pytest.mark.slow
def test_resume_reads_a_file_recreated_while_down_from_its_beginning(
    paths: Paths, spawn: Spawn
) -> None:
    """Deleted and written anew while the watcher was down: on ext4 and tmpfs the new
    file often gets the old inode number back, and must not resume at the old offset."""
    append(paths.log, BENIGN * 3)
    first = spawn()
    first.wait_ready()
    first.signal(signal.SIGKILL)
    first.wait_exit(5.0)

    paths.log.unlink()
    append(paths.log, NCCL_TIMEOUT + "\n" + BENIGN * 5)
    second = spawn()
    assert second.wait_exit(5.0) == 88, second.describe()
    [entry] = paths.ledger_entries()
    assert (entry["file"], entry["offset"]) == (str(paths.log), 0)
