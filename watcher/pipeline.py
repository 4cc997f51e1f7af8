"""The watcher's pipeline: monitors -> queue -> policy -> actions, observed by the reporters.

`Pipeline.emit` is what the monitors report to; `Pipeline.consume` decides on each
finding in turn and carries the decision out, and returns the exit code once a decision
asks for an exit. What runs the monitors and the consumer, and stops them, is the
runtime's (`watcher.runtime`); nothing here exits.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from watcher import __version__
from watcher.actions.actions import Actions
from watcher.clock import Clock
from watcher.monitor import Monitor
from watcher.policy.budget import in_window
from watcher.policy.policy import Policy
from watcher.reporting.board import StatusBoard, shown
from watcher.reporting.decision_log import DecisionLog
from watcher.reporting.metrics import Metrics
from watcher.reporting.reporters import Reporter, Reporters
from watcher.state.ledger import Ledger, restarts
from watcher.tasks import TaskSet
from watcher.types import Finding

log = logging.getLogger(__name__)

OnExit = Callable[[int], None]
"""Told the exit code the moment it is decided (the CLI arms its deadline on it)."""

LEDGER_SHOWN = 20
"""Latest ledger entries shown in /status."""


class Pipeline:
    """Owns the queue between the monitors and the policy, and what /healthz, /readyz and
    /status say about them."""

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
        start_info: dict[str, Any],
        tasks: TaskSet | None = None,
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
        self.start_info = start_info
        self.tasks = tasks or TaskSet()
        """Where the runtime runs the monitors and the consumer (their deaths: /healthz)."""
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

    async def consume(self) -> int:
        """Decide on each finding and carry the decision out, until one asks for an
        exit: returns its code."""
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

    def restarts_in_window(self) -> int:
        budget = self.policy.config.budget
        return len(in_window(self.ledger.entries, self.ledger.age, budget.window))

    def health(self) -> tuple[bool, dict[str, Any]]:
        monitors = {m.name: m.healthy() for m in self.monitors}
        dead = self.tasks.dead()
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
