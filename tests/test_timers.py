"""Beats: periodic timers on multiples of their period, sharing loop iterations."""

import asyncio

import pytest

from watcher.timers import beat_after, loop_time, next_beat, wait_until


@pytest.mark.parametrize(
    ("now", "period", "min_gap", "beat"),
    [
        (12.3, 5.0, 0.0, 15.0),
        (15.0, 5.0, 0.0, 20.0),  # on a beat: the next one, never now
        (14.9, 5.0, 2.5, 20.0),  # too close to 15: skipped
        (12.4, 5.0, 2.5, 15.0),
        (1000.01, 0.25, 0.0, 1000.25),
        (7.0, 10.0, 0.0, 10.0),
    ],
)
def test_next_beat(now: float, period: float, min_gap: float, beat: float) -> None:
    assert next_beat(now, period, min_gap=min_gap) == beat


def test_periods_that_divide_one_another_share_beats() -> None:
    now = 123456.789
    five, ten = next_beat(now, 5.0), next_beat(now, 10.0)
    assert ten == five or ten == next_beat(five, 5.0)


@pytest.mark.parametrize(
    ("started", "now", "beat"),
    [
        (15.0, 15.3, 20.0),  # on the beat: exactly a period later
        (15.0, 18.0, 20.0),  # a slow run that ended before the beat does not skip it
        (15.0, 20.5, 25.0),  # an overrun skips to the next beat
        (15.0, 20.0, 25.0),
        (12.4, 12.5, 15.0),  # off the beat, early: the coming beat
        (14.9, 14.95, 20.0),  # off the beat, just before one: not a moment later
    ],
)
def test_beat_after(started: float, now: float, beat: float) -> None:
    assert beat_after(started, now, 5.0) == beat


@pytest.mark.parametrize("period", [0.0, -1.0])
def test_a_period_must_be_positive(period: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        next_beat(1.0, period)


async def test_wait_until_sleeps_to_the_deadline() -> None:
    when = loop_time() + 0.05
    assert await wait_until(when) is False
    assert loop_time() >= when


async def test_wait_until_returns_early_for_the_event() -> None:
    event = asyncio.Event()
    asyncio.get_running_loop().call_later(0.02, event.set)
    started = loop_time()
    assert await wait_until(started + 5.0, event) is True
    assert loop_time() - started < 1.0


async def test_wait_until_returns_at_once_for_an_event_already_set() -> None:
    event = asyncio.Event()
    event.set()
    assert await wait_until(loop_time() + 5.0, event) is True


async def test_wait_until_a_past_deadline_returns_at_once() -> None:
    assert await wait_until(loop_time() - 1.0) is False


async def _woke_together(first: float, second: float) -> bool:
    """Whether waiters for ``first`` and ``second`` resume in the same loop iteration.

    Each waiter, on waking, queues a marker with call_soon, which runs in the next
    iteration; a waiter that finds the other's marker already run woke later.
    """
    loop = asyncio.get_running_loop()
    markers = [asyncio.Event(), asyncio.Event()]
    saw_other: list[bool] = []

    async def waiter(me: int, when: float) -> None:
        await wait_until(when)
        saw_other.append(markers[1 - me].is_set())
        loop.call_soon(markers[me].set)

    await asyncio.gather(waiter(0, first), waiter(1, second))
    return not any(saw_other)


async def test_timers_on_one_beat_fire_in_one_loop_iteration() -> None:
    beat = next_beat(loop_time(), 0.05, min_gap=0.02)
    assert await _woke_together(beat, beat)


async def test_timers_a_moment_apart_need_two_iterations() -> None:
    """The control for the test above: it can tell the two cases apart."""
    beat = next_beat(loop_time(), 0.05, min_gap=0.02)
    assert not await _woke_together(beat, beat + 0.005)
