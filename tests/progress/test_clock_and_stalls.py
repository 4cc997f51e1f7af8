"""Hang timers against a stepped wall clock, tiny timeouts, and stalls of the watcher itself."""

import asyncio
import os
import time
from pathlib import Path

from tests.conftest import LoopClock
from tests.progress.helpers import block, watching
from tests.waiting import until
from watcher.clock import SystemClock
from watcher.progress import monitor as progress_monitor


def set_mtime(path: Path, when: float) -> None:
    path.touch()
    os.utime(path, (when, when))


async def test_a_heartbeat_from_the_future_counts_from_when_it_was_seen(
    clock: LoopClock, tmp_path: Path
) -> None:
    """The clock was stepped back two hours after the workload touched the file."""
    beat = tmp_path / "heartbeat"
    set_mtime(beat, clock.wall() + 7200.0)
    async with watching(clock, heartbeat_file=beat, heartbeat_timeout=3.0) as run:
        assert run.check("heartbeat")["time_left_s"] <= 3.0
        assert await run.advance(2.5) == []
        assert await run.advance(1.0) == ["HeartbeatStale"]
        assert run.findings[0].message.startswith(f"heartbeat file {beat} not touched for 3.0s")


async def test_a_clock_step_after_the_touch_moves_no_deadline(
    clock: LoopClock, tmp_path: Path
) -> None:
    beat = tmp_path / "heartbeat"
    set_mtime(beat, clock.wall())
    async with watching(clock, heartbeat_file=beat, heartbeat_timeout=10.0) as run:
        clock.epoch += 3600.0  # stepped forward an hour: the file is not an hour stale
        assert await run.advance(5.0) == []
        clock.epoch -= 7200.0  # and back two: the hang is not hidden for two hours
        assert await run.advance(5.5) == ["HeartbeatStale"]


async def test_a_tiny_heartbeat_timeout_never_fires_without_a_reason(tmp_path: Path) -> None:
    """WATCHER_HEARTBEAT_TIMEOUT=1e-320 validated and then exited 88 with an empty reason."""
    async with watching(
        SystemClock(), heartbeat_file=tmp_path / "missing", heartbeat_timeout=1e-320
    ) as run:
        await asyncio.sleep(0.3)
        assert run.findings == []
        assert run.check("heartbeat")["would_report"] is None


async def stall_the_loop(seconds: float) -> float:
    """Block the whole event loop, as SIGSTOP or a cgroup freezer does; returns when it
    ended on the loop's clock."""
    await asyncio.sleep(0)
    time.sleep(seconds)  # noqa: ASYNC251 - the point: nothing else runs meanwhile
    return asyncio.get_running_loop().time()


async def test_bytes_written_during_a_stall_of_the_watcher_are_caught_up_before_a_verdict() -> None:
    """A stall too short to be noticed as one: the catch-up before the verdict finds the
    bytes the workload wrote meanwhile."""
    caught_up = 0

    async def catch_up() -> None:  # what the log monitor reads after the stall
        nonlocal caught_up
        caught_up += 1
        run.write("step 2 | loss 1.9\n")

    async with watching(SystemClock(), catch_up=catch_up, silence_timeout=0.5) as run:
        run.write("step 1 | loss 2.0\n")
        await stall_the_loop(0.5 + progress_monitor.LATE / 4)  # late by a quarter of LATE
        await asyncio.sleep(0.3)
        assert run.findings == []
        assert caught_up == 1
        assert run.monitor.status()["watcher_stalls"] == 0


async def test_after_a_stall_of_the_watcher_a_real_hang_fires_one_timeout_later() -> None:
    timeout = 0.5

    async def nothing_new() -> None:
        return None

    async with watching(SystemClock(), catch_up=nothing_new, silence_timeout=timeout) as run:
        run.write("step 1 | loss 2.0\n")
        resumed = await stall_the_loop(timeout + progress_monitor.LATE + 0.5)
        await until(lambda: run.findings, limit=5.0)
        fired = asyncio.get_running_loop().time()
        assert run.reasons == ["LogSilence"]
        assert timeout <= fired - resumed < timeout + 0.5
        assert run.monitor.status()["watcher_stalls"] == 1


def test_the_stall_threshold_is_above_loop_jitter() -> None:
    assert progress_monitor.LATE >= 0.5


async def test_a_stall_shorter_than_the_threshold_changes_nothing(clock: LoopClock) -> None:
    async with watching(clock, silence_timeout=10.0) as run:
        run.write("x\n")
        block("y\n")
        assert await run.advance(10.5) == ["LogSilence"]
        assert run.monitor.status()["watcher_stalls"] == 0
