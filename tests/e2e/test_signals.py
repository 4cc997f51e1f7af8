"""SIGTERM and SIGINT (Pod deletion, Ctrl-C) stop the watcher cleanly: exit 0, never 88."""

import os
import signal
import time

import pytest

from tests.e2e.conftest import Spawn
from tests.e2e.process import script_command
from tests.e2e.workload import BENIGN, NCCL_TIMEOUT, Paths, append


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_while_idle_exits_0_promptly(
    paths: Paths, spawn: Spawn, signum: signal.Signals
) -> None:
    watcher = spawn()
    watcher.wait_ready()
    append(paths.log, BENIGN * 2)
    watcher.wait_scanned(2)
    start = time.monotonic()
    watcher.signal(signum)
    code = watcher.wait_exit(5.0)
    latency = time.monotonic() - start
    assert code == 0, watcher.describe()
    assert latency < 1.0, f"stopping took {latency:.3f}s"
    watcher.wait_msg("stop requested: exiting 0", 1.0)
    assert paths.ledger_entries() == []
    assert not paths.termination.exists()


@pytest.mark.slow
def test_sigterm_saves_cursors_so_the_next_start_resumes(paths: Paths, spawn: Spawn) -> None:
    """A failed liveness probe restarts the watcher alone, with SIGTERM."""
    first = spawn()
    first.wait_ready()
    append(paths.log, BENIGN * 2)
    first.wait_scanned(2)
    first.signal(signal.SIGTERM)
    assert first.wait_exit(5.0) == 0
    offset = append(paths.log, NCCL_TIMEOUT + "\n")

    second = spawn()
    assert second.wait_msg("starting")["mode"] == "resume"
    assert second.wait_exit(2.0) == 88
    [entry] = paths.ledger_entries()
    assert entry["offset"] == offset


@pytest.mark.slow
def test_console_script_stops_on_sigterm(paths: Paths, spawn: Spawn) -> None:
    watcher = spawn(script_command())
    watcher.wait_ready()
    watcher.signal(signal.SIGTERM)
    assert watcher.wait_exit(5.0) == 0


@pytest.mark.slow
def test_sigterm_during_last_words_is_0_not_88(paths: Paths, spawn: Spawn) -> None:
    """The termination log is a FIFO nobody reads, so the last words hang until SIGTERM."""
    fifo = paths.root / "termination-fifo"
    os.mkfifo(fifo)
    watcher = spawn(WATCHER_TERMINATION_LOG=str(fifo), WATCHER_LAST_WORDS_TIMEOUT="30")
    watcher.wait_ready()
    append(paths.log, NCCL_TIMEOUT + "\n")
    watcher.wait_log(
        lambda r: str(r.get("msg")).startswith("exiting 88"), 5.0, "the decision to exit 88"
    )
    assert watcher.alive()
    start = time.monotonic()
    watcher.signal(signal.SIGTERM)
    code = watcher.wait_exit(5.0)
    latency = time.monotonic() - start
    assert code == 0, watcher.describe()
    assert latency < 1.0, f"stopping took {latency:.3f}s"
