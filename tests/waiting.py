"""Waiting for a condition with a deadline, for state that offers no event to await: the
one polling helper of the tests, on the event loop (`until`) and off it (`wait_until`)."""

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

STEP = 0.01
"""Seconds between looks on the event loop."""
POLL = 0.02
"""Seconds between looks off it (a process, a file another process writes)."""


async def until(
    condition: Callable[[], object],
    limit: float = 5.0,
    what: str = "the condition",
    *,
    detail: Callable[[], str] = str,
    ignore: tuple[type[Exception], ...] = (),
    step: float = STEP,
) -> None:
    """Return once ``condition()`` is true; fail after ``limit`` seconds, saying ``what``
    and ``detail()``. An exception in ``ignore`` (a file caught mid-write) counts as false."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not _holds(condition, ignore):
        if loop.time() >= deadline:
            raise AssertionError(f"not within {limit}s: {what}\n{detail()}".rstrip())
        await asyncio.sleep(step)


def wait_until(
    condition: Callable[[], T | None], timeout: float, what: str, detail: Callable[[], str] = str
) -> T:
    """Poll ``condition`` until it returns something other than None/False, or fail; for
    tests that drive processes from a plain thread."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value is not None and value is not False:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{detail()}")
        time.sleep(POLL)


def _holds(condition: Callable[[], object], ignore: tuple[type[Exception], ...]) -> bool:
    try:
        return bool(condition())
    except ignore:
        return False
