"""Time as a dependency: production uses the system clocks, tests inject a fake."""

import time
from typing import Protocol


class Clock(Protocol):
    """The two clocks the watcher reads."""

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps; for intervals and windows within one process."""

    def wall(self) -> float:
        """Seconds since the epoch; for the ledger, which outlives the process."""


class SystemClock:
    """The real clocks."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()
