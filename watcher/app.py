"""The running watcher: monitors -> queue -> policy -> actions, observed by the reporters.

`Watcher.run` returns the exit code; it never exits itself. It ends when a decision asks
for an exit, when ``stop`` is set (SIGTERM: exit 0, whatever is pending), or when a
monitor dies (exit 1: the sidecar alone restarts and resumes from its cursors, rather
than running blind).
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from watcher import __version__, exitcodes
from watcher.actions.actions import Actions
from watcher.blocking import call_with_deadline
from watcher.clock import Clock
from watcher.monitor import Monitor
from watcher.policy.budget import in_window
from watcher.policy.policy import Policy
from watcher.reporting.board import StatusBoard, shown
from watcher.reporting.decision_log import DecisionLog
from watcher.reporting.metrics import Metrics
from watcher.reporting.reporters import Reporter, Reporters
from watcher.state.ledger import Ledger, restarts
from watcher.types import Finding

log = logging.getLogger(__name__)

OnExit = Callable[[int], None]
"""Told the exit code the moment it is decided (the CLI arms its deadline on it)."""

CURSOR_SAVE_INTERVAL = 5.0
"""Seconds between cursor saves while logs flow; none while they do not."""
STOP_TIMEOUT = 1.0
"""Deadline for cancelled tasks to finish on the way out."""
LEDGER_SHOWN = 20
"""Latest ledger entries shown in /status."""


class Watcher:
    """Owns the queue between monitors and the policy, and the task lifecycle."""

    def __init__(
        self,
        *,
        monitors: Sequence[Monitor],
        policy: Policy,
        actions: Actions,
        ledger: Ledger,
        board: StatusBoard,
        clock: Clock,
        queue_size: int,
        save_cursors: Callable[[], Callable[[], object]],
        start_info: dict[str, Any],
        cursors_moved: asyncio.Event | None = None,
        on_exit: OnExit | None = None,
        reporters: Sequence[Reporter] = (),
    ) -> None:
        self.monitors = list(monitors)
        self.policy = policy
        self.actions = actions
        self.ledger = ledger
        self.board = board
        self.clock = clock
        self.reporters = Reporters([DecisionLog(clock), board])
        self.metrics = Metrics(
            self.monitors,
            self.ledger,
            self.restarts_in_window,
            lambda: self.policy.holding is not None,
            reporter_failures=self.reporters.failure_counts,
        )
        self.reporters.add(self.metrics)
        for reporter in reporters:
            self.reporters.add(reporter)
        self._queue: asyncio.Queue[Finding] = asyncio.Queue(maxsize=queue_size)
        self._save_cursors = save_cursors
        self._cursors_moved = cursors_moved
        self.start_info = start_info
        self._tasks: list[asyncio.Task[Any]] = []
        self._on_exit = on_exit
        self.dropped = 0

    def emit(self, finding: Finding) -> None:
        """Monitors call this. Never blocks: a full queue drops and counts."""
        self._report_finding(finding)
        try:
            self._queue.put_nowait(finding)
        except asyncio.QueueFull:
            self.dropped += 1
            self.metrics.dropped.inc()

    async def run(self, stop: asyncio.Event) -> int:
        monitors = {
            asyncio.create_task(m.run(self.emit), name=f"monitor-{m.name}") for m in self.monitors
        }
        consumer = asyncio.create_task(self._consume(), name="policy")
        stopper = asyncio.create_task(stop.wait(), name="stop")
        self._tasks = [*monitors, consumer, stopper]
        if self._cursors_moved is not None:
            saver = self._save_periodically(self._cursors_moved)
            self._tasks.append(asyncio.create_task(saver, name="cursor-saver"))
        pending = set(self._tasks)
        try:
            while True:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                # a monitor with a one-off job (the Kubernetes checks) may simply finish
                done -= {t for t in done & monitors if _finished_cleanly(t)}
                if done:
                    return self._outcome(done, consumer, stopper)
        finally:
            await self._shutdown()

    def _outcome(
        self, done: set[asyncio.Task[Any]], consumer: asyncio.Task[Any], stopper: asyncio.Task[Any]
    ) -> int:
        if stopper in done:
            log.info("stop requested: exiting 0")
            return exitcodes.CLEAN
        if consumer in done and consumer.exception() is None:
            return int(consumer.result())
        for task in done:
            error = task.exception() if not task.cancelled() else None
            log.error(
                "task %s ended unexpectedly: exiting 1",
                task.get_name(),
                exc_info=error,
                extra={"fields": {"task": task.get_name()}},
            )
        return exitcodes.INTERNAL_ERROR

    async def _consume(self) -> int:
        while True:
            finding: Finding | None = await self._queue.get()
            while finding is not None:
                decision = self.policy.decide(finding)
                self.reporters.decision(decision)
                outcome = await self.actions.carry_out(decision)
                if outcome.exit_code is not None:
                    if self._on_exit is not None:
                        self._on_exit(outcome.exit_code)
                    return outcome.exit_code
                finding = outcome.setback  # what acting ran into is decided on at once
                if finding is not None:
                    self._report_finding(finding)

    def _report_finding(self, finding: Finding) -> None:
        self.reporters.finding(finding)

    async def _save_periodically(self, moved: asyncio.Event) -> None:
        """Save the cursors at most every CURSOR_SAVE_INTERVAL seconds, and only after
        they moved: an idle watcher never wakes up for this."""
        while True:
            await moved.wait()
            moved.clear()
            await asyncio.sleep(CURSOR_SAVE_INTERVAL)
            try:
                await call_with_deadline(self._save_cursors(), CURSOR_SAVE_INTERVAL, "cursors")
            except (OSError, TimeoutError) as exc:
                log.warning("cannot save read cursors: %s", exc)

    async def _shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._decided_exit():
            return  # the last words are written; waiting here would only delay the exit
        pending = [t for t in self._tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=STOP_TIMEOUT)

    def _decided_exit(self) -> bool:
        consumer = next((t for t in self._tasks if t.get_name() == "policy"), None)
        return consumer is not None and _finished_cleanly(consumer)

    def restarts_in_window(self) -> int:
        budget = self.policy.config.budget
        return len(in_window(self.ledger.entries, self.ledger.age, budget.window))

    def health(self) -> tuple[bool, dict[str, Any]]:
        monitors = {m.name: m.healthy() for m in self.monitors}
        dead = [t.get_name() for t in self._tasks if t.done() and not _finished_cleanly(t)]
        ok = all(good for good, _ in monitors.values()) and not dead
        body = {name: {"ok": good, "detail": detail} for name, (good, detail) in monitors.items()}
        return ok, {"ok": ok, "monitors": body, "dead_tasks": dead}

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        ready = {m.name: m.ready.is_set() for m in self.monitors}
        ok = all(ready.values())
        return ok, {"ok": ok, "monitors": ready}

    def status(self) -> dict[str, Any]:
        policy = self.policy
        budget = policy.config.budget
        holding, final = policy.holding, policy.final
        last = self.ledger.last("restart")
        return {
            "version": __version__,
            "state": policy.state,
            "holding": None if holding is None else holding.explanation,
            "stopped_acting": None if final is None else final.explanation,
            "start": self.start_info,
            "last_restart": None if last is None else asdict(last),
            "budget": {
                "restarts_in_window": self.restarts_in_window(),
                "restarts_total": len(restarts(self.ledger.entries)),
                "max_restarts": budget.max_restarts,
                "window_s": budget.window,
                "min_uptime_s": budget.min_uptime,
                "backoff_s": budget.backoff,
            },
            "monitors": {m.name: {**m.status(), "healthy": m.healthy()[0]} for m in self.monitors},
            "recent_findings": list(self.board.findings),
            "recent_decisions": list(self.board.decisions),
            "ledger": [shown(asdict(entry)) for entry in self.ledger.entries[-LEDGER_SHOWN:]],
            "findings_dropped": self.dropped,
        }


def _finished_cleanly(task: asyncio.Task[Any]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None
