"""Drive a real ProgressMonitor on the event loop's clock, and LogActivity with blocks as
the log monitor scans them.

The tests run under looptime: the loop's time is fake and a sleep fast-forwards it, so
`Harness.advance` is a plain `asyncio.sleep`, and a finding appears only if the monitor
woke on its own deadline. Nothing pokes the monitor.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from watcher.clock import Clock
from watcher.logs.lines import Block
from watcher.progress.monitor import ProgressConfig, ProgressMonitor
from watcher.progress.signals import LogActivity
from watcher.types import FaultClass, Finding, Severity

PATTERN = r"step (\d+)"
SETTLE = 10
"""Loop iterations that run what is due at one instant: plenty for wake, evaluate, emit."""


def block(text: str, base: int = 0) -> Block:
    data = text.encode()
    return Block(data, len(data), base)


@dataclass
class Harness:
    clock: Clock
    activity: LogActivity
    monitor: ProgressMonitor
    task: asyncio.Task[None]
    findings: list[Finding] = field(default_factory=list)
    offset: int = 0

    def write(self, text: str) -> None:
        """What the log monitor does with each block it scans."""
        piece = block(text, self.offset)
        self.activity.on_block(piece)
        self.offset += piece.end

    async def settle(self) -> None:
        """Let what is due now run (no time passes): the monitor's wake-up at this very
        instant, the finding it emits."""
        for _ in range(SETTLE):
            await asyncio.sleep(0)
        if self.task.done():
            self.task.result()
            raise AssertionError("the progress monitor stopped")

    async def advance(self, seconds: float) -> list[str]:
        """Let ``seconds`` pass on the loop's clock; the reasons of the new findings."""
        before = len(self.findings)
        await asyncio.sleep(seconds)
        await self.settle()
        return [f.reason for f in self.findings[before:]]

    @property
    def reasons(self) -> list[str]:
        return [f.reason for f in self.findings]

    def check(self, name: str) -> dict[str, Any]:
        checks: dict[str, dict[str, Any]] = self.monitor.status()["checks"]
        return checks[name]


@asynccontextmanager
async def watching(
    clock: Clock,
    pattern: str | None = None,
    catch_up: Callable[[], Awaitable[None]] | None = None,
    **config: Any,
) -> AsyncIterator[Harness]:
    """A ProgressMonitor with ``config`` (ProgressConfig fields) running in a task;
    ``catch_up`` stands for the log monitor's."""
    activity = LogActivity(clock, pattern)
    monitor = ProgressMonitor(ProgressConfig(**config), activity, clock, catch_up)
    findings: list[Finding] = []
    task = asyncio.create_task(monitor.run(findings.append), name="progress-monitor")
    harness = Harness(clock, activity, monitor, task, findings)
    try:
        await harness.settle()  # no time passes: the test's clock readings stay exact
        assert monitor.ready.is_set()
        yield harness
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def assert_hang(finding: Finding, reason: str, at: float) -> None:
    """A hang finding, made at ``at`` (to the microsecond: the monitor woke on time)."""
    assert finding.reason == reason
    assert finding.source == "progress"
    assert finding.severity is Severity.FATAL
    assert finding.fault_class is FaultClass.HANG
    assert abs(finding.at - at) < 1e-6, f"fired at {finding.at}, expected {at}"
    assert finding.evidence == (finding.message,)
