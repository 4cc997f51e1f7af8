"""How many descriptors the log monitor may still open, leaving a reserve for the rest.

The ledger, the cursor file, the termination log, the Kubernetes API and the HTTP
server's (capped) clients need descriptors too, above all at the moment of a fault. So
log files are not opened once fewer than `RESERVE` would be left.
"""

import os
import resource
import time

RESERVE = 96
"""Descriptors left free when opening log files."""
RECOUNT = 0.05
"""Seconds a count of free descriptors is trusted (less each file opened meanwhile):
a pass over thousands of refused paths must not list /proc/self/fd thousands of times."""


class DescriptorBudget:
    """Counts free descriptors against the soft limit, at most every `RECOUNT` seconds."""

    def __init__(self) -> None:
        self._counted: tuple[float, int] | None = None

    def short(self) -> str | None:
        """Why no more log file may be opened now, or None if one may."""
        left = self._left()
        if left is None or left > RESERVE:
            return None
        return f"{left} descriptors left, {RESERVE} kept in reserve"

    def opened(self) -> None:
        """One more descriptor is in use."""
        if self._counted is not None:
            self._counted = (self._counted[0], self._counted[1] - 1)

    def _left(self) -> int | None:
        now = time.monotonic()
        if self._counted is None or now - self._counted[0] >= RECOUNT:
            left = count_left()
            self._counted = None if left is None else (now, left)
        return None if self._counted is None else self._counted[1]


def count_left() -> int | None:
    """How many more descriptors this process may open; None if it cannot tell."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        return soft - len(os.listdir("/proc/self/fd"))
    except OSError:
        return None
