"""Shared wake-ups for periodic work.

An idle watcher costs what its wake-ups cost, and on a VM each one can be charged
milliseconds of CPU however little it does (see `bench/`). So periodic timers (the
probes, the log safety net, the GPU poll) sit on *beats*: multiples of their period on
the event loop's clock. Timers whose periods divide one another fall due at the very
same instant and the loop runs them in one iteration: two probes every 5 s and a
re-stat every 10 s wake the process once every 5 s.

Beats are on the loop's clock, not on the injected `Clock`: a timer set for an exact
loop time is what lets two timers share a wake-up. (asyncio's loop reads
`time.monotonic`, which is also what `SystemClock.monotonic` returns.)
"""

import asyncio
import math


def loop_time() -> float:
    """The running event loop's clock."""
    return asyncio.get_running_loop().time()


def next_beat(now: float, period: float, *, min_gap: float = 0.0) -> float:
    """The first multiple of ``period`` more than ``min_gap`` seconds after ``now``."""
    if period <= 0:
        raise ValueError(f"a period must be positive, not {period!r}")
    return (math.floor((now + min_gap) / period) + 1) * period


def beat_after(started: float, now: float, period: float) -> float:
    """When work that started at ``started`` and is done at ``now`` runs next.

    The first beat at least half a period after the start: work that began on a beat
    runs again exactly a period later, and work that began off the beat (a first check,
    a poll an event asked for) is not repeated a moment later. Work that overran that
    beat skips to the next one.
    """
    beat = next_beat(started, period, min_gap=period / 2)
    return beat if beat > now else next_beat(now, period)


async def wait_until(when: float, event: asyncio.Event | None = None) -> bool:
    """Sleep until loop time ``when``, or until ``event`` is set: True if it was.

    The loop timer is set for exactly ``when``, not for "now + delay", so timers due on
    the same beat fire in the same loop iteration.
    """
    if event is not None and event.is_set():
        return True
    try:
        async with asyncio.timeout_at(when):
            if event is None:
                await asyncio.get_running_loop().create_future()
            else:
                await event.wait()
    except TimeoutError:
        return event is not None and event.is_set()
    return True
