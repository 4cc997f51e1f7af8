"""The step counter: the same step repeated is a stall, any other number is progress."""

from tests.conftest import FakeClock, LoopClock
from tests.progress.helpers import PATTERN, assert_hang, block, watching
from tests.waiting import until
from watcher.clock import SystemClock
from watcher.logs.lines import Block
from watcher.progress.signals import WINDOW, LogActivity


def step(activity: LogActivity) -> tuple[float | None, str | None, float | None]:
    return activity.step, activity.step_text, activity.step_changed_at


def test_activity_records_byte_times_and_the_last_step() -> None:
    clock = FakeClock()  # LogActivity alone, no loop: a clock moved by hand
    activity = LogActivity(clock, PATTERN)
    assert (activity.first_byte_at, activity.last_byte_at, activity.step) == (None, None, None)
    activity.on_block(block("loading data\n"))
    assert activity.armed.is_set(), "first bytes give the silence timer a start"
    assert step(activity) == (None, None, None)
    activity.armed.clear()
    clock.advance(2.0)
    activity.on_block(block("step 41 | loss 2.1\nstep 42 | loss 2.0\neval\n"))
    assert activity.armed.is_set(), "the first step gives the step timer a start"
    assert (activity.first_byte_at, activity.last_byte_at) == (1000.0, 1002.0)
    assert step(activity) == (42.0, "42", 1002.0)
    clock.advance(1.0)
    activity.on_block(block("step 42 | loss 2.0\n"))
    assert activity.step_changed_at == 1002.0, "the same number is no progress"
    clock.advance(1.0)
    activity.on_block(block("step 7 | loss 2.9\n"))
    assert (activity.step_text, activity.step_changed_at) == ("7", 1004.0), "a restart counts"


def test_step_is_the_last_one_even_far_back_in_a_large_block() -> None:
    clock = FakeClock()  # LogActivity alone, no loop: a clock moved by hand
    activity = LogActivity(clock, PATTERN)
    activity.on_block(block("step 3\n" + "loss 1.0\n" * (3 * WINDOW // 9)))
    assert activity.step_text == "3"
    activity.on_block(block("step 4\n" + "x" * (WINDOW + 100) + "\nstep 5\n"))
    assert activity.step_text == "5"


def test_step_ignores_an_unfinished_line_after_the_block() -> None:
    clock = FakeClock()  # LogActivity alone, no loop: a clock moved by hand
    """``data[end:]`` is the next, unfinished line: it is not scanned yet."""
    activity = LogActivity(clock, PATTERN)
    data = b"step 1\n" + b"x" * 100 + b"\nstep 9"
    activity.on_block(Block(data, len(data) - len(b"step 9"), 0))
    assert activity.step_text == "1"


def test_step_ignores_an_unfinished_line_after_a_long_last_line() -> None:
    clock = FakeClock()  # LogActivity alone, no loop: a clock moved by hand
    """The same, when the block's last line is longer than the search window: the search
    moves back and its end moves `WINDOW // 16` past the window start, here past
    ``block.end`` into the unfinished line."""
    activity = LogActivity(clock, PATTERN)
    data = b"step 1\n" + b"x" * (WINDOW + 1000) + b"\nstep 9"
    activity.on_block(Block(data, len(data) - len(b"step 9"), 0))
    assert activity.step_text == "1", "a number from a line not yet complete"


async def test_same_step_repeated_fires(clock: LoopClock) -> None:
    async with watching(clock, PATTERN, progress_timeout=30.0) as run:
        run.write("step 100 | loss 1.5\n")
        seen = clock.now
        for _ in range(29):
            assert await run.advance(1.0) == []
            run.write("step 100 | loss 1.5\n")  # bytes keep coming, the counter does not
        assert await run.advance(1.0) == ["ProgressStalled"]
        assert_hang(run.findings[0], "ProgressStalled", seen + 30.0)
        assert run.findings[0].message == "progress stuck at 100 for 30.0s (progress timeout 30s)"
        assert await run.advance(100.0) == []
        assert run.monitor.status()["step"] == "100"
        assert run.monitor.status()["step_unchanged_for_s"] == 130.0


async def test_advancing_steps_never_fire(clock: LoopClock) -> None:
    async with watching(clock, PATTERN, progress_timeout=10.0) as run:
        for step in range(1, 50):
            run.write(f"step {step} | loss 1.0\n")
            assert await run.advance(9.0) == []
        assert run.check("step")["time_left_s"] == 1.0


async def test_a_lower_step_is_progress(clock: LoopClock) -> None:
    async with watching(clock, PATTERN, progress_timeout=10.0) as run:
        run.write("step 500\n")
        assert await run.advance(9.0) == []
        run.write("resumed from checkpoint\nstep 400\n")
        assert await run.advance(9.0) == []
        run.write("step 400\n")
        assert await run.advance(1.0) == ["ProgressStalled"]
        assert run.findings[0].message.startswith("progress stuck at 400 for 10.0s")


async def test_step_re_arms_when_the_counter_moves(clock: LoopClock) -> None:
    async with watching(clock, PATTERN, progress_timeout=10.0) as run:
        run.write("step 1\n")
        assert await run.advance(10.0) == ["ProgressStalled"]
        run.write("step 2\n")
        assert await run.advance(9.0) == []
        assert await run.advance(1.0) == ["ProgressStalled"]


async def test_no_progress_when_no_step_within_the_grace(clock: LoopClock) -> None:
    started = clock.now
    async with watching(clock, PATTERN, progress_timeout=5.0, startup_grace=20.0) as run:
        run.write("loading\n" * 10)
        assert await run.advance(19.0) == []
        assert run.check("step")["would_report"] == "NoProgress"
        assert await run.advance(1.0) == ["NoProgress"]
        assert_hang(run.findings[0], "NoProgress", started + 20.0)
        assert run.findings[0].message == "no step within 20s of start"


async def test_no_step_and_no_grace_never_fires(clock: LoopClock) -> None:
    async with watching(clock, PATTERN, progress_timeout=5.0) as run:
        run.write("loading\n")
        assert await run.advance(1000.0) == []
        assert run.check("step")["armed"] is False


async def test_step_on_the_real_clock_re_arms_when_the_counter_moves() -> None:
    async with watching(SystemClock(), PATTERN, progress_timeout=0.2) as run:
        run.write("step 1\n")
        await until(lambda: run.findings, limit=3.0)
        run.write("step 2\n")
        try:
            await until(lambda: len(run.findings) >= 2, limit=2.0)
        except TimeoutError:
            raise AssertionError(
                "the stall at step 2 was never reported: after a finding the monitor sleeps "
                "with no deadline and a new step does not wake it"
            ) from None
