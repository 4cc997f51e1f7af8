"""The heartbeat file: stale, touched, missing, missing past the grace."""

import os
from pathlib import Path

from tests.conftest import LoopClock
from tests.progress.helpers import assert_hang, watching
from tests.waiting import until
from watcher.clock import SystemClock


def touch(path: Path, clock: LoopClock | SystemClock, ago: float = 0.0) -> None:
    """Set the file's mtime to the clock's wall time minus ``ago`` (creating it)."""
    path.touch()
    when = clock.wall() - ago
    os.utime(path, (when, when))


async def test_stale_heartbeat_fires_once(clock: LoopClock, tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"
    touch(beat, clock, ago=2.0)
    touched = clock.now - 2.0
    async with watching(clock, heartbeat_file=beat, heartbeat_timeout=10.0) as run:
        assert 7.9 < run.check("heartbeat")["time_left_s"] < 8.1
        assert await run.advance(7.5) == []
        assert await run.advance(1.0) == ["HeartbeatStale"]
        finding = run.findings[0]
        assert_hang(finding, "HeartbeatStale", touched + 10.0)  # on its deadline
        assert finding.message.startswith(f"heartbeat file {beat} not touched for 10.0s")
        assert await run.advance(100.0) == []


async def test_touched_heartbeat_re_arms(clock: LoopClock, tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"
    touch(beat, clock)
    async with watching(clock, heartbeat_file=beat, heartbeat_timeout=10.0) as run:
        for _ in range(5):
            assert await run.advance(6.0) == []
            touch(beat, clock)
        assert await run.advance(10.5) == ["HeartbeatStale"]
        touch(beat, clock)  # no signal comes from a file: it is looked at again a timeout on
        assert await run.advance(9.9) == []
        assert run.check("heartbeat")["fired"] is False
        assert await run.advance(0.6) == ["HeartbeatStale"]


async def test_missing_heartbeat_without_grace_waits(clock: LoopClock, tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"
    async with watching(clock, heartbeat_file=beat, heartbeat_timeout=5.0) as run:
        for _ in range(10):
            assert await run.advance(50.0) == []
        assert run.check("heartbeat")["would_report"] is None
        touch(beat, clock)  # the workload creates it at last: from now on it counts
        assert await run.advance(4.0) == []
        assert await run.advance(1.5) == ["HeartbeatStale"]


async def test_missing_heartbeat_past_the_grace(clock: LoopClock, tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"
    started = clock.now
    async with watching(
        clock, heartbeat_file=beat, heartbeat_timeout=5.0, startup_grace=30.0
    ) as run:
        assert await run.advance(29.0) == []
        assert await run.advance(1.0) == ["HeartbeatMissing"]
        assert_hang(run.findings[0], "HeartbeatMissing", started + 30.0)
        assert run.findings[0].message == f"no heartbeat file {beat} within 30s of start"
        assert await run.advance(100.0) == []


async def test_heartbeat_created_within_the_grace(clock: LoopClock, tmp_path: Path) -> None:
    beat = tmp_path / "heartbeat"
    async with watching(
        clock, heartbeat_file=beat, heartbeat_timeout=5.0, startup_grace=30.0
    ) as run:
        assert await run.advance(10.0) == []
        touch(beat, clock)
        assert await run.advance(19.0) == [], "stale, but within the grace"
        assert await run.advance(1.0) == ["HeartbeatStale"]


async def test_a_wall_clock_step_does_not_report_the_same_stale_file_again(
    clock: LoopClock, tmp_path: Path
) -> None:
    """One untouched file is one stall, whatever the wall clock does meanwhile."""
    beat = tmp_path / "heartbeat"
    touch(beat, clock)
    async with watching(clock, heartbeat_file=beat, heartbeat_timeout=10.0) as run:
        assert await run.advance(11.0) == ["HeartbeatStale"]
        clock.epoch += 0.25  # an NTP correction; the file is still untouched
        assert await run.advance(1.0) == [], (
            "the stall's key is derived from monotonic - (wall - mtime), rounded to 1 ms: "
            "it changes when the wall clock steps, so the same stall is reported again"
        )


async def test_heartbeat_on_the_real_clock_re_arms_after_a_touch(tmp_path: Path) -> None:
    clock = SystemClock()
    beat = tmp_path / "heartbeat"
    touch(beat, clock)
    async with watching(clock, heartbeat_file=beat, heartbeat_timeout=0.2) as run:
        await until(lambda: run.findings, limit=3.0)
        touch(beat, clock)
        try:
            await until(lambda: len(run.findings) >= 2, limit=2.0)
        except TimeoutError:
            raise AssertionError(
                "the second stale period was never reported: after a finding the monitor "
                "sleeps with no deadline and nothing wakes it to look at the file again"
            ) from None
