"""The watcher's background tasks, in one set with one way to end them.

Every long-running coroutine of the watcher (each monitor, the policy's consumer, the
cursor keeper, the ready announcement, the stop request) is spawned here under a name.
`first_to_end` waits until one of them ends in a way that ends the watcher; `close`
cancels them all and waits for them, but never past its deadline.
"""

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class TaskSet:
    def __init__(self) -> None:
        self._tasks: dict[asyncio.Task[Any], bool] = {}
        """Each task, and whether it may simply finish (a one-off job) without ending
        the watcher."""
        self._closing = False

    def spawn(
        self, name: str, coroutine: Coroutine[Any, Any, Any], *, may_finish: bool = False
    ) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine, name=name)
        self._tasks[task] = may_finish
        return task

    async def first_to_end(self) -> set[asyncio.Task[Any]]:
        """Wait until a task ends that ends the watcher: one that may not finish, or any
        that raised or was cancelled from outside. Returns the ones that did."""
        pending = set(self._tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            ending = {t for t in done if not (self._tasks[t] and finished_cleanly(t))}
            if ending:
                return ending
        raise RuntimeError("every task finished: nothing is watching")

    def dead(self) -> list[str]:
        """Names of the tasks that ended badly (for /healthz): raised, or were cancelled
        by something other than `close`."""
        return [t.get_name() for t in self._tasks if t.done() and self._died(t)]

    def _died(self, task: asyncio.Task[Any]) -> bool:
        if task.cancelled():
            return not self._closing
        return task.exception() is not None

    async def close(self, limit: float) -> None:
        """Cancel every task and wait for them, at most ``limit`` seconds (0: do not wait,
        the process is about to exit)."""
        self._closing = True
        for task in self._tasks:
            task.cancel()
        pending = [t for t in self._tasks if not t.done()]
        if pending and limit > 0:
            _, late = await asyncio.wait(pending, timeout=limit)
            for task in late:
                log.warning("task %s did not stop within %.1fs", task.get_name(), limit)


def finished_cleanly(task: asyncio.Task[Any]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None
