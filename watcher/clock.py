"""Time as a dependency: one clock for findings, deadlines and sleeps.

The watcher's monotonic time is the running event loop's clock (`loop.time()`), the one
every sleep and timer uses, so a deadline computed from a reading and the sleep that waits
for it cannot disagree. Outside a loop (start-up, offline commands) it is
`time.monotonic()`, which the default loop reads too. Tests drive the loop's clock with
looptime (tests/conftest.py `LoopClock`) or inject a clock moved by hand for code that
runs without a loop.
"""

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """The two clocks the watcher reads."""

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps: the event loop's; for intervals and windows."""

    def wall(self) -> float:
        """Seconds since the epoch; for the ledger, which outlives the process."""


class SystemClock:
    """The real clocks."""

    def monotonic(self) -> float:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:  # no loop runs: the same clock the default loop reads
            return time.monotonic()

    def wall(self) -> float:
        return time.time()
