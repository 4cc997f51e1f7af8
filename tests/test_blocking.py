"""The deadline helper returns results, passes exceptions on, and gives up on time."""

import time

import pytest

from watcher.blocking import call_with_deadline


async def test_returns_the_result() -> None:
    assert await call_with_deadline(lambda: 41 + 1, 1.0) == 42


async def test_passes_the_call_s_own_exception_on() -> None:
    with pytest.raises(ZeroDivisionError):
        await call_with_deadline(lambda: 1 // 0, 1.0)


async def test_gives_up_at_the_deadline_while_the_call_still_hangs() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await call_with_deadline(lambda: time.sleep(3), 0.05)
    assert time.monotonic() - started < 1.0
