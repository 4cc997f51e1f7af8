"""Waiting for a condition with a deadline, for state that offers no event to await."""

import asyncio
from collections.abc import Callable


async def until(condition: Callable[[], object], limit: float = 5.0, step: float = 0.01) -> None:
    """Return once ``condition()`` is true; raise TimeoutError after ``limit`` seconds."""
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110 - the state has no event to wait on
            await asyncio.sleep(step)
