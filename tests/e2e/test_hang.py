"""Hangs seen from outside: `pod-watcher run` exits 88 when logs go silent, the step
counter stops, or a probe fails `failureThreshold` times; never before it should.

Times are measured from the write (or the probe request) that starts the count to the
child's exit, and kept with the test's report (`detect_s`, see the junit XML).
"""

import json
import threading
import time
from pathlib import Path
from types import TracebackType

import pytest

from tests.e2e.conftest import Spawn
from tests.e2e.process import WatcherProcess
from tests.e2e.workload import Paths, append
from tests.logs.helpers import record
from tests.probes.server import ThreadedTarget
from tests.waiting import wait_until

PERIOD = 0.5
THRESHOLD = 3
STEP = r"step (\d+)"


def exit_88(watcher: WatcherProcess, paths: Paths, reason: str, timeout: float) -> float:
    """Wait for exit 88 for ``reason``; return when the child was seen gone."""
    code = watcher.wait_exit(timeout)
    exited = time.monotonic()
    assert code == 88, watcher.describe()
    message = paths.termination.read_text("utf-8")
    assert f"reason: {reason}\n" in message, message
    assert "fault class: hang" in message, message
    return exited


def silence(watcher: WatcherProcess) -> dict[str, object]:
    checks: dict[str, dict[str, object]] = watcher.status()["monitors"]["progress"]["checks"]
    return checks["silence"]


class StepWriter:
    """A training loop printing its step every 0.2 s on a thread, advancing or stuck."""

    def __init__(self, path: Path, advancing: bool, interval: float = 0.2) -> None:
        self.path = path
        self.advancing = advancing
        self.interval = interval
        self.first_at = 0.0
        self.lines = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="step-writer", daemon=True)

    def _run(self) -> None:
        step = 100
        self.first_at = time.monotonic()
        while True:
            append(self.path, f"step {step} | loss 2.31 | lr 3.0e-04\n")
            self.lines += 1
            step += 1 if self.advancing else 0
            if self._stop.wait(self.interval):  # the writer's own pace, not a synchronisation
                return

    def __enter__(self) -> "StepWriter":
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(5.0)


@pytest.mark.slow
def test_silence_exits_88_two_to_three_seconds_after_the_last_byte(
    paths: Paths, spawn: Spawn, request: pytest.FixtureRequest
) -> None:
    watcher = spawn(WATCHER_SILENCE_TIMEOUT="2")
    watcher.wait_ready()
    last = 0.0
    for step in range(1, 6):
        append(paths.log, f"step {step} | loss 2.0\n")
        last = time.monotonic()
        watcher.wait_scanned(step)
    assert silence(watcher)["armed"] is True
    delay = exit_88(watcher, paths, "LogSilence", 5.0) - last
    record(request, delay)
    assert 2.0 <= delay <= 3.0, f"exited {delay:.3f}s after the last byte"
    assert "no new log output for 2.0s" in paths.termination.read_text("utf-8")


@pytest.mark.slow
def test_silence_never_fires_before_the_first_byte(paths: Paths, spawn: Spawn) -> None:
    watcher = spawn(WATCHER_SILENCE_TIMEOUT="1")
    watcher.wait_ready()
    watcher.assert_stays_alive(3.5)
    assert silence(watcher) == {
        "armed": False,
        "time_left_s": None,
        "fired": False,
        "would_report": None,
    }
    append(paths.log, "finally, a first line\n")
    written = time.monotonic()
    delay = exit_88(watcher, paths, "LogSilence", 5.0) - written
    assert 1.0 <= delay <= 2.0, delay


@pytest.mark.slow
def test_silence_never_fires_within_the_startup_grace(paths: Paths, spawn: Spawn) -> None:
    watcher = spawn(WATCHER_SILENCE_TIMEOUT="1", WATCHER_STARTUP_GRACE="4")
    watcher.wait_ready()
    ready = time.monotonic()
    append(paths.log, "loading checkpoint\n")
    written = time.monotonic()
    exited = exit_88(watcher, paths, "LogSilence", 8.0)
    assert exited - watcher.started_at >= 4.0, "exited within the grace"
    assert exited - written > 2.0, "the 1 s silence timer waited for the grace"
    assert exited - ready <= 5.0


@pytest.mark.slow
def test_no_log_output_when_the_grace_expires(paths: Paths, spawn: Spawn) -> None:
    watcher = spawn(WATCHER_SILENCE_TIMEOUT="1", WATCHER_STARTUP_GRACE="2")
    watcher.wait_ready()
    ready = time.monotonic()
    exited = exit_88(watcher, paths, "NoLogOutput", 6.0)
    assert exited - watcher.started_at >= 2.0
    assert exited - ready <= 3.0
    assert "no log output within 2s of start" in paths.termination.read_text("utf-8")


@pytest.mark.slow
def test_the_same_step_repeated_exits_88(
    paths: Paths, spawn: Spawn, request: pytest.FixtureRequest
) -> None:
    watcher = spawn(WATCHER_PROGRESS_PATTERN=STEP, WATCHER_PROGRESS_TIMEOUT="2")
    watcher.wait_ready()
    with StepWriter(paths.log, advancing=False) as writer:
        exited = exit_88(watcher, paths, "ProgressStalled", 6.0)
    delay = exited - writer.first_at
    record(request, delay)
    assert writer.lines >= 9, "the log kept moving while the counter did not"
    assert 2.0 <= delay <= 3.0, f"exited {delay:.3f}s after the step first appeared"
    assert "progress stuck at 100 for 2.0s" in paths.termination.read_text("utf-8")


@pytest.mark.slow
def test_an_advancing_step_never_exits(paths: Paths, spawn: Spawn) -> None:
    watcher = spawn(WATCHER_PROGRESS_PATTERN=STEP, WATCHER_PROGRESS_TIMEOUT="2")
    watcher.wait_ready()
    with StepWriter(paths.log, advancing=True) as writer:
        watcher.assert_stays_alive(5.0)
        progress = watcher.status()["monitors"]["progress"]
    assert writer.lines >= 20
    assert int(progress["step"]) >= 118
    assert progress["checks"]["step"]["fired"] is False
    assert not paths.termination.exists()


def probe_env(target: ThreadedTarget) -> str:
    probe = {
        "type": "http",
        "name": "trainer-health",
        "url": target.target.url,
        "periodSeconds": PERIOD,
        "failureThreshold": THRESHOLD,
        "timeoutSeconds": 0.4,
    }
    return json.dumps([probe])


def healthy_checks(target: ThreadedTarget, count: int, watcher: WatcherProcess) -> None:
    def enough() -> bool:
        assert watcher.alive(), watcher.describe()
        return target.target.statuses().count(200) >= count

    wait_until(enough, 5.0, f"{count} healthy checks", watcher.describe)


@pytest.mark.slow
def test_a_failing_probe_exits_88(
    paths: Paths, spawn: Spawn, request: pytest.FixtureRequest
) -> None:
    with ThreadedTarget() as target:
        watcher = spawn(WATCHER_PROBES=probe_env(target))
        watcher.wait_ready()
        healthy_checks(target, 2, watcher)
        target.target.answer(500)
        exited = exit_88(watcher, paths, "ProbeFailed", 5.0)
        first = target.target.first(500)
        statuses = target.target.statuses()
    assert first is not None
    delay = exited - first
    record(request, delay)
    assert statuses.count(500) == THRESHOLD, statuses
    expected = (THRESHOLD - 1) * PERIOD
    assert expected <= delay <= expected + PERIOD, f"exited {delay:.3f}s after the first 500"
    assert delay <= 2.0
    message = paths.termination.read_text("utf-8")
    assert "trainer-health failed 3 times in a row" in message, message
    assert "unexpected status 500" in message


@pytest.mark.slow
def test_a_probe_that_fails_twice_then_recovers_never_exits(paths: Paths, spawn: Spawn) -> None:
    with ThreadedTarget() as target:
        watcher = spawn(WATCHER_PROBES=probe_env(target))
        watcher.wait_ready()
        healthy_checks(target, 1, watcher)
        target.target.then(500, 500)
        healthy_checks(target, 5, watcher)  # two failures, then four more periods
        watcher.assert_stays_alive(1.0)
        probes = watcher.status()["monitors"]["probes"]["probes"]
        statuses = target.target.statuses()
    assert statuses.count(500) == 2, statuses
    assert probes[0]["failures_in_a_row"] == 0
    assert probes[0]["reported"] is False
    assert not paths.termination.exists()
