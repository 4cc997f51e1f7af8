"""The steps of the last words, each bounded by one deadline on the event loop's clock."""

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from watcher.blocking import call_with_deadline

log = logging.getLogger(__name__)


def left(deadline: float) -> float:
    """Seconds until ``deadline`` (at least a millisecond: a wait of 0 would not yield)."""
    return max(0.001, deadline - asyncio.get_running_loop().time())


async def blocking_step(
    name: str, fn: Callable[[], object], deadline: float, whole_s: float
) -> None:
    """Run the blocking ``fn`` in a thread until ``deadline``; a timeout or an OSError is
    logged (``whole_s``, the whole deadline, is named in the message), never raised."""
    try:
        await call_with_deadline(fn, left(deadline), name=f"last-words-{name}")
    except TimeoutError:
        log.error("%s: no answer within the %ss deadline", name, whole_s)
    except OSError as exc:
        log.error("%s failed: %s", name, exc)


async def together(steps: list[Coroutine[Any, Any, None]], deadline: float) -> None:
    """Run ``steps`` concurrently; whatever is unfinished at ``deadline`` is dropped."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=left(deadline))
    for task in pending:
        task.cancel()
    if pending:
        log.error("last words: %d step(s) cut off at the deadline", len(pending))
