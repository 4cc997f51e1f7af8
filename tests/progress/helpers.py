"""Drive a real ProgressMonitor with a fake clock, and LogActivity with blocks as the log
monitor scans them.

The monitor computes deadlines from the injected clock but sleeps with
`asyncio.timeout` on the real loop, so moving the fake clock alone wakes nothing:
`Harness.advance` moves it and then sets `activity.armed`, the event the monitor waits
on, and waits until the monitor has looked again (it clears the event right before it
goes back to sleep, after evaluating every check).
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.conftest import FakeClock
from tests.waiting import until
from watcher.clock import Clock
from watcher.logs.lines import Block
from watcher.progress.monitor import ProgressConfig, ProgressMonitor
from watcher.progress.signals import LogActivity
from watcher.types import FaultClass, Finding, Severity

PATTERN = r"step (\d+)"


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

    async def look(self) -> None:
        """Make the monitor evaluate its checks at the clock's time now; wait until it has."""
        self.activity.armed.set()
        await until(self._asleep, limit=2.0, step=0.001)

    def _asleep(self) -> bool:
        if self.task.done():
            self.task.result()
            raise AssertionError("the progress monitor stopped")
        return not self.activity.armed.is_set()

    async def advance(self, seconds: float) -> list[str]:
        """Move the fake clock, let the monitor look; the reasons of new findings."""
        assert isinstance(self.clock, FakeClock)
        before = len(self.findings)
        self.clock.advance(seconds)
        await self.look()
        return [f.reason for f in self.findings[before:]]

    @property
    def reasons(self) -> list[str]:
        return [f.reason for f in self.findings]

    def check(self, name: str) -> dict[str, Any]:
        checks: dict[str, dict[str, Any]] = self.monitor.status()["checks"]
        return checks[name]


@asynccontextmanager
async def watching(
    clock: Clock, pattern: str | None = None, **config: Any
) -> AsyncIterator[Harness]:
    """A ProgressMonitor with ``config`` (ProgressConfig fields) running in a task."""
    activity = LogActivity(clock, pattern)
    monitor = ProgressMonitor(ProgressConfig(**config), activity, clock)
    findings: list[Finding] = []
    task = asyncio.create_task(monitor.run(findings.append), name="progress-monitor")
    harness = Harness(clock, activity, monitor, task, findings)
    try:
        await until(monitor.ready.is_set, limit=2.0)
        await harness.look()
        yield harness
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def assert_hang(finding: Finding, reason: str, at: float) -> None:
    assert finding.reason == reason
    assert finding.source == "progress"
    assert finding.severity is Severity.FATAL
    assert finding.fault_class is FaultClass.HANG
    assert finding.at == at, f"fired at {finding.at}, expected {at}"
    assert finding.evidence == (finding.message,)
