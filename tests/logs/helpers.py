"""Run a real LogMonitor (real files, real inotify observer, real clock) and collect findings.

The monitor is built the way `watcher.monitor_setup._log_monitor` builds it. Findings arrive in
an `asyncio.Queue`; tests wait for them with deadlines, never with bare sleeps.
"""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest

from tests.waiting import until
from watcher.clock import SystemClock
from watcher.logs.files import OpenPolicy, TrackedFiles
from watcher.logs.globs import GlobSet, WatchRoot
from watcher.logs.monitor import LogMonitor, Timing, WatcherFactory
from watcher.logs.tail import Tail
from watcher.logs.watch import Deliver, InotifyWatcher
from watcher.rules.matcher import RuleMatcher
from watcher.rules.rule import Rule
from watcher.state.cursors import Cursor
from watcher.types import Finding

KIB = 1 << 10
MIB = 1 << 20
RULES = (Rule(reason="Fatal", pattern="FATAL-[0-9]+"),)
INOTIFY = Timing(poll_interval=30.0, fallback_poll_interval=0.25, rotate_wait=2.0)
"""The safety-net tick is far away, so whatever a test sees was found through inotify."""
DEADLINE = 5.0


@dataclass
class Running:
    """A started monitor and the findings it emitted so far."""

    monitor: LogMonitor
    files: TrackedFiles
    findings: asyncio.Queue[Finding]
    task: asyncio.Task[None]

    def _check_alive(self) -> None:
        if self.task.done():
            self.task.result()  # raises what killed the monitor
            raise AssertionError("the monitor stopped")

    async def next(self, within: float = DEADLINE) -> Finding:
        """The next finding, or fail after ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self.findings.empty():
            self._check_alive()
            if loop.time() >= deadline:
                raise AssertionError(f"no finding within {within}s")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.05):
                    return await self.findings.get()
        return self.findings.get_nowait()

    async def take(self, count: int, within: float = DEADLINE) -> list[Finding]:
        return [await self.next(within) for _ in range(count)]

    async def quiet(self, seconds: float = 0.5) -> None:
        """Assert that no finding arrives for ``seconds``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline:
            self._check_alive()
            assert self.findings.empty(), f"unexpected: {self.findings.get_nowait()}"
            await asyncio.sleep(0.02)
        assert self.findings.empty(), f"unexpected: {self.findings.get_nowait()}"

    async def until(
        self, predicate: Callable[[], bool], what: str, within: float = DEADLINE
    ) -> None:
        """Poll ``predicate`` until it holds, or fail after ``within`` seconds."""

        def holds() -> bool:
            self._check_alive()
            return predicate()

        await until(holds, within, what)

    def tail(self, path: Path) -> Tail:
        return self.files.by_path[str(path)]

    async def carrying(self, path: Path, pending: int) -> None:
        """Wait until the tail of ``path`` carries ``pending`` bytes of an unfinished line."""
        tail = self.tail(path)
        await self.until(lambda: tail.lines.pending == pending, f"{pending} bytes carried")

    async def read_to_end(self, path: Path) -> None:
        """Wait until the tail of ``path`` has read everything the file holds now."""
        size = os.stat(path).st_size
        await self.until(lambda: self.tail(path).offset == size, f"{path.name} read to its end")


@asynccontextmanager
async def running(
    globs: Sequence[Path | str],
    *,
    rules: Sequence[Rule] = RULES,
    timing: Timing = INOTIFY,
    from_end: bool = True,
    resume: dict[str, Cursor] | None = None,
    max_files: int = 64,
    max_line: int = MIB,
    chunk: int = MIB,
    watcher_factory: WatcherFactory | None = None,
) -> AsyncIterator[Running]:
    """Start a monitor, wait until it is ready, and cancel it on the way out."""
    files = TrackedFiles(
        GlobSet([str(g) for g in globs]), max_files=max_files, max_line=max_line, chunk=chunk
    )
    monitor = LogMonitor(
        files=files,
        matcher=RuleMatcher(rules),
        open_policy=OpenPolicy(from_end=from_end, resume=resume or {}),
        timing=timing,
        clock=SystemClock(),
        watcher_factory=watcher_factory or InotifyWatcher,
    )
    findings: asyncio.Queue[Finding] = asyncio.Queue()
    task = asyncio.create_task(monitor.run(findings.put_nowait), name="log-monitor")
    run = Running(monitor, files, findings, task)
    try:
        await run.until(monitor.ready.is_set, "the monitor to be ready", within=10.0)
        yield run
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class DeafWatcher:
    """An `FsWatcher` that never reports anything, like inotify on NFS or FUSE."""

    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Deliver) -> None:
        self.roots: list[WatchRoot] = []
        self.started = False

    def start(self) -> None:
        self.started = True

    def set_roots(self, roots: list[WatchRoot]) -> None:
        self.roots = roots

    def follow(self, tails: object) -> None:
        pass

    def is_alive(self) -> bool:
        return self.started

    def stop(self) -> None:
        self.started = False


class Writer:
    """A log writer holding its file open, as a training process does."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view) :]

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> "Writer":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def record(request: pytest.FixtureRequest, seconds: float, name: str = "detect_s") -> None:
    """Keep a measured detection time with the test's report (see the junit XML)."""
    request.node.user_properties.append((name, round(seconds, 4)))


def append(path: Path, data: bytes) -> int:
    """Append ``data`` in one write; return the offset it starts at."""
    with Writer(path) as writer:
        offset = os.fstat(writer.fd).st_size
        writer.write(data)
    return offset


def create(path: Path, data: bytes, aside: Path) -> None:
    """Make ``path`` appear with all of ``data`` at once: written in ``aside``, renamed in."""
    staged = aside / f"{path.name}.staged"
    staged.write_bytes(data)
    staged.rename(path)
