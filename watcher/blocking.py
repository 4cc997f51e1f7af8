"""Run a blocking call off the event loop, with a deadline that really holds.

The call runs in a daemon thread: if it hangs (an fsync on a sick disk, a stuck NFS
write), the caller gets `TimeoutError` at the deadline and the process can still exit,
because nothing waits for a daemon thread at interpreter shutdown. The default executor's
threads would be joined at exit and could hold the process forever.
"""

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def call_with_deadline(fn: Callable[[], T], limit: float, name: str = "blocking") -> T:
    """Return ``fn()``, run in a daemon thread, or raise TimeoutError after ``limit`` s."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(outcome: Callable[[], None]) -> None:
        if not future.done():
            outcome()

    def work() -> None:
        outcome: Callable[[], None]
        try:
            result = fn()
        except BaseException as exc:  # handed to the awaiting task, not swallowed
            error = exc  # `exc` is unbound once the except block ends
            outcome = lambda: future.set_exception(error)  # noqa: E731
        else:
            outcome = lambda: future.set_result(result)  # noqa: E731
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
            loop.call_soon_threadsafe(deliver, outcome)

    threading.Thread(target=work, name=name, daemon=True).start()
    async with asyncio.timeout(limit):
        return await future
