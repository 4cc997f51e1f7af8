"""The watcher's own stalls are not the workload's: SIGSTOP the real process for twice
the silence timeout while the workload logs, and nothing fires at SIGCONT; a real hang
is still caught within one timeout after SIGCONT."""

import os
import signal
import time

import pytest

from tests.e2e.conftest import Spawn
from tests.e2e.test_hang import StepWriter, exit_88
from tests.e2e.workload import Paths, append
from tests.logs.helpers import record

TIMEOUT = 2.0
STOPPED = 2 * TIMEOUT


@pytest.mark.slow
def test_a_stopped_watcher_does_not_call_a_logging_workload_hung(
    paths: Paths, spawn: Spawn, request: pytest.FixtureRequest
) -> None:
    watcher = spawn(WATCHER_SILENCE_TIMEOUT=f"{TIMEOUT:g}", WATCHER_PROGRESS_PATTERN=r"step (\d+)",
                    WATCHER_PROGRESS_TIMEOUT=f"{TIMEOUT:g}")  # fmt: skip
    watcher.wait_ready()
    with StepWriter(paths.log, advancing=True) as writer:
        watcher.wait_scanned(3)
        watcher.signal(signal.SIGSTOP)
        time.sleep(STOPPED)  # the stall itself: a duration, not a synchronisation
        watcher.signal(signal.SIGCONT)
        watcher.assert_stays_alive(TIMEOUT + 1.0)
        progress = watcher.status()["monitors"]["progress"]
        assert progress["watcher_stalls"] >= 1
        assert writer.lines > 20
    last = time.monotonic()
    delay = exit_88(watcher, paths, "LogSilence", TIMEOUT + 3.0) - last
    record(request, delay, "hang_after_writer_stopped_s")
    assert delay <= TIMEOUT + 1.0


@pytest.mark.slow
def test_a_real_hang_is_caught_one_timeout_after_sigcont(
    paths: Paths, spawn: Spawn, request: pytest.FixtureRequest
) -> None:
    watcher = spawn(WATCHER_SILENCE_TIMEOUT=f"{TIMEOUT:g}")
    watcher.wait_ready()
    append(paths.log, "step 1 | loss 2.0\n")
    watcher.wait_scanned(1)
    watcher.signal(signal.SIGSTOP)  # the workload hangs meanwhile: it writes nothing more
    time.sleep(STOPPED)
    watcher.signal(signal.SIGCONT)
    resumed = time.monotonic()
    delay = exit_88(watcher, paths, "LogSilence", TIMEOUT + 3.0) - resumed
    record(request, delay, "hang_after_sigcont_s")
    assert delay <= TIMEOUT + 0.5, f"caught {delay:.2f}s after SIGCONT"


@pytest.mark.slow
def test_a_heartbeat_from_the_future_does_not_hide_a_hang(paths: Paths, spawn: Spawn) -> None:
    """The clock was stepped back two hours after the workload's last touch."""
    beat = paths.root / "heartbeat"
    beat.touch()
    ahead = time.time() + 7200
    os.utime(beat, (ahead, ahead))
    watcher = spawn(WATCHER_HEARTBEAT_FILE=str(beat), WATCHER_HEARTBEAT_TIMEOUT="3")
    watcher.wait_ready()
    started = time.monotonic()
    check = watcher.status()["monitors"]["progress"]["checks"]["heartbeat"]
    assert check["time_left_s"] <= 3.0  # before: "fires in 7191 s"
    exit_88(watcher, paths, "HeartbeatStale", 6.0)
    assert time.monotonic() - started <= 4.5
