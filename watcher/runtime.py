"""The runtime: starts, runs and stops everything of the watcher under one deadline.

It starts the HTTP server, then runs every task in one `TaskSet`: each monitor, the
pipeline's consumer, the cursor keeper, the ready announcement and the stop request. It
ends when one of them ends it:

- a decision asks for an exit (the consumer returns its code): the last words are
  written, nothing is closed, the entry point exits at once;
- ``stop`` is set (SIGTERM): exit 0, with the cursors saved, the tasks, the server and
  the resources (HTTP session, API client) closed, all within `STOP_TIMEOUT`;
- a task dies (a monitor that raised): exit 1, closed the same way without the save (the
  sidecar alone restarts and resumes from its cursors, rather than running blind).

uvicorn's `Server` and aiojobs' `Scheduler` were the models: one object owns the
lifecycle, and nothing it starts outlives its deadline.
"""

import asyncio
import contextlib
import logging
from typing import Any

from watcher import exitcodes
from watcher.config.load import ConfigError
from watcher.pipeline import Pipeline
from watcher.reporting.server import HttpServer
from watcher.state.cursor_keeper import CursorKeeper
from watcher.tasks import finished_cleanly

log = logging.getLogger("watcher")

STOP_TIMEOUT = 2.0
"""Seconds a clean stop (or one after a dead task) gets for everything: the tasks to end,
the last cursor save, the server and the resources to close."""
READY_SAVE_TIMEOUT = 1.0
"""Seconds the save at readiness may take (it records that this start saw the restart)."""


class Runtime:
    def __init__(
        self,
        pipeline: Pipeline,
        server: HttpServer,
        keeper: CursorKeeper,
        *,
        cursors_moved: asyncio.Event | None = None,
        resources: contextlib.AsyncExitStack | None = None,
        dry_run: bool = False,
    ) -> None:
        self.pipeline = pipeline
        self._server = server
        self._keeper = keeper
        self._moved = cursors_moved
        self._resources = resources or contextlib.AsyncExitStack()
        self._dry_run = dry_run
        self.port: int | None = None
        self.started = asyncio.Event()
        """Set once the server listens (``port`` is known)."""

    async def run(self, stop: asyncio.Event) -> int:
        """Run until something ends the watcher; return the exit code."""
        await self._start_server()
        tasks = self.pipeline.tasks
        for monitor in self.pipeline.monitors:  # a one-off check (the API's) may finish
            tasks.spawn(f"monitor-{monitor.name}", monitor.run(self.pipeline.emit), may_finish=True)
        consumer = tasks.spawn("policy", self.pipeline.consume())
        stopper = tasks.spawn("stop", stop.wait())
        if self._moved is not None:
            tasks.spawn("cursor-saver", self._keeper.keep(self._moved))
        tasks.spawn("ready", self._announce_ready(), may_finish=True)
        code = exitcodes.INTERNAL_ERROR
        decided = False
        try:
            ended = await tasks.first_to_end()
            decided = consumer in ended and finished_cleanly(consumer)
            code = _outcome(ended, consumer if decided else None, stopper)
        finally:
            await self._stop(decided=decided, clean=code == exitcodes.CLEAN)
        return code

    async def _start_server(self) -> None:
        try:
            self.port = await self._server.start()
        except OSError as exc:
            await self._resources.aclose()
            port = self._server.requested_port
            raise ConfigError([f"WATCHER_HTTP_PORT={port}: cannot listen: {exc}"]) from None
        fields = {**self.pipeline.start_info, "port": self.port, "dry_run": self._dry_run}
        log.info("starting", extra={"fields": fields})
        self.started.set()

    async def _announce_ready(self) -> None:
        await asyncio.gather(*(m.ready.wait() for m in self.pipeline.monitors))
        await self._keeper.save(READY_SAVE_TIMEOUT)  # this start saw the last restart
        log.info("ready", extra={"fields": {"port": self.port}})

    async def _stop(self, *, decided: bool, clean: bool) -> None:
        """After a decided exit, only cancel (the process exits now); else close
        everything in order within `STOP_TIMEOUT`."""
        tasks = self.pipeline.tasks
        if decided:
            await tasks.close(0)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_TIMEOUT
        await tasks.close(STOP_TIMEOUT / 2)
        try:
            async with asyncio.timeout_at(deadline):
                if clean:
                    await self._keeper.save(max(0.0, deadline - loop.time()))
                await self._server.stop()
                await self._resources.aclose()
        except TimeoutError:
            log.warning("the shutdown did not finish within %.1fs", STOP_TIMEOUT)


def _outcome(
    ended: set[asyncio.Task[Any]], decided: asyncio.Task[Any] | None, stopper: asyncio.Task[Any]
) -> int:
    """The exit code: a stop asked for, else the policy's (``decided``: the consumer, when
    it ended with a code), else an internal error naming the task that ended."""
    if stopper in ended:
        log.info("stop requested: exiting 0")
        return exitcodes.CLEAN
    if decided is not None:
        return int(decided.result())
    for task in ended:
        error = task.exception() if not task.cancelled() else None
        log.error(
            "task %s ended unexpectedly: exiting 1",
            task.get_name(),
            exc_info=error,
            extra={"fields": {"task": task.get_name()}},
        )
    return exitcodes.INTERNAL_ERROR
