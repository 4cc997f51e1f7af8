"""The Events reporter: every decision that deserves an Event gets one, posted by a task of
its own, so handing it a decision never waits on the API server.

The queue is bounded (``QUEUE`` Events; more are dropped and counted). Before the process
exits, the last words drain it under their deadline (`drain`). Deduplication and rate
limits stay in `EventPoster`; the wording is `event_for`'s.
"""

import asyncio
import contextlib
import logging
from collections import deque

from watcher.gang.reasons import FOLLOW
from watcher.kube.events import EventPoster, PodEvent, event_for
from watcher.types import Decision, Finding

log = logging.getLogger(__name__)

QUEUE = 32


class EventReporter:
    name = "events"

    def __init__(self, poster: EventPoster, exit_code: int) -> None:
        self.poster = poster
        self._exit_code = exit_code
        self._queue: deque[PodEvent] = deque()
        self._posting = False
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def finding(self, finding: Finding) -> None:
        """Findings get their Event through their decision."""

    def decision(self, decision: Decision) -> None:
        if decision.details.get(FOLLOW):
            return  # one Event per gang restart: the Pod that decided posts it
        event = event_for(decision, self._exit_code)
        if event is None:
            return
        if len(self._queue) >= QUEUE:
            self.dropped += 1
            return
        self._queue.append(event)
        self._start()
        assert self._wake is not None and self._idle is not None
        self._idle.clear()
        self._wake.set()

    def _start(self) -> None:
        if self._task is None:
            self._wake, self._idle = asyncio.Event(), asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="events")

    async def _run(self) -> None:
        assert self._wake is not None and self._idle is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self.poster.post(self._queue.popleft())  # bounded, never raises
            self._idle.set()

    async def drain(self, within: float) -> None:
        """Wait, at most ``within`` seconds, until every queued Event was posted."""
        if self._idle is None or self._idle.is_set():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._idle.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([self._task], timeout=1.0)
