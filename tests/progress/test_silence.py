"""Log silence and no log output, on a fake clock; the re-arm also on the real one."""

import asyncio

from tests.conftest import LoopClock
from tests.progress.helpers import assert_hang, watching
from tests.waiting import until
from watcher.clock import SystemClock


async def test_silence_fires_once_per_stall_at_its_deadline(clock: LoopClock) -> None:
    async with watching(clock, silence_timeout=10.0) as run:
        run.write("step 1\n")
        written = clock.now
        assert await run.advance(4.0) == []
        run.write("step 2\n")  # pushes the deadline to 4 + 10
        assert await run.advance(9.5) == []
        assert await run.advance(0.5) == ["LogSilence"]
        assert_hang(run.findings[0], "LogSilence", written + 14.0)
        assert run.findings[0].message == "no new log output for 10.0s (silence timeout 10s)"
        assert await run.advance(10.0) == []
        assert await run.advance(1000.0) == [], "one finding per stall"


async def test_silence_re_arms_after_new_bytes(clock: LoopClock) -> None:
    async with watching(clock, silence_timeout=10.0) as run:
        run.write("step 1\n")
        assert await run.advance(10.0) == ["LogSilence"]
        assert run.check("silence")["fired"] is True
        run.write("step 2\n")
        assert await run.advance(0.0) == []
        assert run.check("silence") == {
            "armed": True,
            "time_left_s": 10.0,
            "fired": False,
            "would_report": "LogSilence",
        }
        assert await run.advance(9.0) == []
        assert await run.advance(1.0) == ["LogSilence"]
        assert run.findings[1].at == run.findings[0].at + 10.0


async def test_silence_never_fires_before_the_first_byte(clock: LoopClock) -> None:
    async with watching(clock, silence_timeout=1.0) as run:
        for _ in range(5):
            assert await run.advance(100.0) == []
        assert run.check("silence") == {
            "armed": False,
            "time_left_s": None,
            "fired": False,
            "would_report": None,
        }
        status = run.monitor.status()
        assert status["last_log_bytes_age_s"] is None
        run.write("first\n")
        assert await run.advance(1.0) == ["LogSilence"]


async def test_silence_never_fires_within_startup_grace(clock: LoopClock) -> None:
    started = clock.now
    async with watching(clock, silence_timeout=2.0, startup_grace=30.0) as run:
        run.write("loading\n")
        assert await run.advance(3.0) == [], "2 s of silence, but within the grace"
        assert run.check("silence")["time_left_s"] == 27.0
        assert await run.advance(26.5) == []
        assert await run.advance(0.5) == ["LogSilence"]
        assert_hang(run.findings[0], "LogSilence", started + 30.0)


async def test_no_log_output_when_the_grace_expires_with_no_bytes(clock: LoopClock) -> None:
    started = clock.now
    async with watching(clock, silence_timeout=5.0, startup_grace=60.0) as run:
        assert run.check("silence") == {
            "armed": True,
            "time_left_s": 60.0,
            "fired": False,
            "would_report": "NoLogOutput",
        }
        assert await run.advance(59.0) == []
        assert await run.advance(1.0) == ["NoLogOutput"]
        assert_hang(run.findings[0], "NoLogOutput", started + 60.0)
        assert run.findings[0].message == "no log output within 60s of start"
        assert await run.advance(100.0) == []
        run.write("late start\n")  # the workload comes alive: silence counts from here
        assert await run.advance(4.0) == []
        assert await run.advance(1.0) == ["LogSilence"]


async def test_bytes_within_the_grace_prevent_no_log_output(clock: LoopClock) -> None:
    async with watching(clock, silence_timeout=50.0, startup_grace=10.0) as run:
        assert await run.advance(9.0) == []
        run.write("hello\n")
        assert await run.advance(1.0) == []
        assert await run.advance(48.0) == []
        assert await run.advance(1.0) == ["LogSilence"]


async def test_silence_on_the_real_clock_fires_on_time() -> None:
    loop = asyncio.get_running_loop()
    async with watching(SystemClock(), silence_timeout=0.3) as run:
        run.write("step 1\n")
        written = loop.time()
        await until(lambda: run.findings, limit=3.0)
        delay = run.findings[0].at - written
        assert 0.3 <= delay < 0.45, delay


async def test_silence_on_the_real_clock_re_arms_after_new_bytes() -> None:
    """Nothing pokes the monitor here: new bytes alone must make the next stall count."""
    async with watching(SystemClock(), silence_timeout=0.2) as run:
        run.write("step 1\n")
        await until(lambda: run.findings, limit=3.0)
        run.write("step 2\n")
        try:
            await until(lambda: len(run.findings) >= 2, limit=2.0)
        except TimeoutError:
            raise AssertionError(
                "the second stall was never reported: after a finding the monitor sleeps "
                f"with no deadline and LogActivity only wakes it on the first byte "
                f"(status {run.monitor.status()})"
            ) from None
        assert run.reasons == ["LogSilence", "LogSilence"]
