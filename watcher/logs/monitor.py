"""The log monitor: follow the files, scan what they gain, report rule matches.

One task does all the reading, so no file is ever read by two coroutines at once. It
wakes when inotify reports a change, and on a safety-net tick that re-stats every file
in case inotify stayed silent (NFS, FUSE, some container file systems). The tick sits on
its interval's beat (`watcher.timers`), so it shares a wake-up with the other timers.
If a file grows twice in a row with no event for it, the monitor says so and polls at a
short interval.

Files take turns: one chunk of each file with news, round after round, and news that
arrives meanwhile joins the round, so a long backlog in one file never delays a fatal
line in another by more than a chunk per file. Before a hang verdict (and when the
workload exits) `catch_up` has the task re-stat everything and read it all.
"""

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from watcher.clock import Clock
from watcher.logs import refusals
from watcher.logs.files import OpenPolicy, TrackedFiles
from watcher.logs.globs import GlobSet
from watcher.logs.scanner import BlockScanner, Reader
from watcher.logs.tail import NotFollowable, Tail
from watcher.logs.trust import InotifyTrust
from watcher.logs.unmatched import UnmatchedGlobs
from watcher.logs.watch import Changes, Deliver, FsWatcher, InotifyWatcher
from watcher.monitor import Emit
from watcher.rules.matcher import RuleMatcher
from watcher.state.cursors import Cursor
from watcher.timers import loop_time, next_beat, wait_until

log = logging.getLogger(__name__)

WatcherFactory = Callable[[asyncio.AbstractEventLoop, Deliver], FsWatcher]
CATCH_UP_TIMEOUT = 1.0
"""Longest `catch_up` waits for the reading task; reading goes on after it."""


@dataclass(frozen=True)
class Timing:
    poll_interval: float
    fallback_poll_interval: float
    rotate_wait: float
    glob_grace: float | None = 60.0
    """Seconds after start at which a glob that matches nothing is reported (None: never)."""


class LogMonitor:
    """Follows files matching globs and emits a finding for each rule that matches."""

    name = "log"

    def __init__(
        self,
        *,
        files: TrackedFiles,
        matcher: RuleMatcher,
        open_policy: OpenPolicy,
        timing: Timing,
        clock: Clock,
        watcher_factory: WatcherFactory = InotifyWatcher,
        readers: Sequence[Reader] = (),
    ) -> None:
        """``readers`` are handed every block read, before it is scanned: the progress
        monitor's timers subscribe (when bytes arrive, the latest step number)."""
        self._files = files
        self._globs: GlobSet = files.globs
        self._scanner = BlockScanner(self.name, matcher, clock, readers)
        self._open_policy = open_policy
        self._timing = timing
        self._clock = clock
        self._watcher_factory = watcher_factory
        self._watcher: FsWatcher | None = None
        self._changes = Changes()
        self._wake = asyncio.Event()
        self._trust = InotifyTrust(timing.fallback_poll_interval)
        self.ready = asyncio.Event()
        self.moved = asyncio.Event()
        """Set whenever a read offset moved: the cursors are worth saving again."""
        self._last_cursors: dict[str, Cursor] | None = None
        self._catching_up: list[asyncio.Future[None]] = []
        self.unmatched = UnmatchedGlobs(files, timing.glob_grace)

    async def run(self, emit: Emit) -> None:
        loop = asyncio.get_running_loop()
        self._watcher = self._watcher_factory(loop, self._on_changes)
        try:
            self._watcher.set_roots(self._globs.watch_roots())
            self._watcher.start()
            self.unmatched.start(loop_time())
            opened = self._files.open_existing(self._open_policy, self._clock.monotonic())
            log.info(
                "following log files",
                extra={
                    "fields": {"files": [t.path for t in opened], "globs": self._globs.patterns}
                },
            )
            self._watcher.follow(self._files.tails())  # watch first, then read
            await self._drain(set(opened), emit)
            self.ready.set()
            await self._loop(emit)
        finally:
            self._watcher.stop()
            self._last_cursors = self._files.cursors()
            self._files.close()
            for waiter in self._catching_up:
                waiter.cancel()

    async def catch_up(self) -> None:
        """Have the reading task re-stat every file, take the pending events and read
        what the files gained; return when it has (at most `CATCH_UP_TIMEOUT` s)."""
        if not self.ready.is_set():
            return
        waiter = asyncio.get_running_loop().create_future()
        self._catching_up.append(waiter)
        self._wake.set()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            async with asyncio.timeout(CATCH_UP_TIMEOUT):
                await asyncio.shield(waiter)

    def cursors(self) -> dict[str, Cursor]:
        """How far each file was scanned; after the monitor stopped, where it stopped."""
        if self._last_cursors is not None:
            return dict(self._last_cursors)
        return self._files.cursors()

    @property
    def polling(self) -> bool:
        """True once inotify was caught missing changes: poll at the short interval."""
        return self._trust.polling

    @property
    def bytes_scanned(self) -> int:
        return self._scanner.bytes_scanned

    @property
    def lines_scanned(self) -> int:
        return self._scanner.lines_scanned

    def healthy(self) -> tuple[bool, str]:
        if self._watcher is None or not self.ready.is_set():
            return False, "starting"
        if not self._watcher.is_alive() and not self.polling:
            return False, "the inotify observer thread died"
        return True, "polling" if self.polling else "inotify"

    def up(self) -> bool:
        """Following at least one file, with inotify alive or polling."""
        return self.healthy()[0] and bool(self._files.tails())

    def counters(self) -> dict[str, float]:
        totals = self._files.refused.total
        return {
            "bytes_scanned": self.bytes_scanned,
            "lines_scanned": self.lines_scanned,
            **{f"refusals_{kind}": float(totals[kind]) for kind in refusals.KINDS},
        }

    def not_followed(self) -> dict[str, int]:
        """Paths refused now, by kind (`watcher.logs.refusals.KINDS`): gauges for metrics."""
        return self._files.refused.counts()

    def globs_matching_nothing(self) -> int:
        """Globs matching nothing now, once the grace is over: a gauge for metrics."""
        return len(self.unmatched.now or ())

    def status(self) -> dict[str, Any]:
        now = self._clock.monotonic()
        return {
            "mode": "polling" if self.polling else "inotify",
            "globs": list(self._globs.patterns),
            "files": [tail.status(now) for tail in self._files.tails()],
            "not_followed": self._files.refused.status(),
            "globs_matching_nothing": self.unmatched.now,
            "bytes_scanned": self.bytes_scanned,
            "lines_scanned": self.lines_scanned,
            "last_data_age_s": _age(now, self._scanner.last_data_at),
        }

    def _on_changes(self, changes: Changes) -> None:
        self._changes.paths |= changes.paths
        self._changes.directories_changed |= changes.directories_changed
        self._wake.set()

    async def _loop(self, emit: Emit) -> None:
        next_tick = next_beat(loop_time(), self._interval())
        while True:
            # a new orphan (no events come for it) or polling shortens the wait at once
            next_tick = min(next_tick, next_beat(loop_time(), self._interval()))
            await wait_until(min(next_tick, self.unmatched.due()), self._wake)
            self._wake.clear()
            waiting, self._catching_up = self._catching_up, []
            touched = self._apply(self._take_changes()) | set(self._files.orphans())
            if waiting or loop_time() >= next_tick:
                touched |= self._tick()
                next_tick = next_beat(loop_time(), self._interval())
            if self._watcher is not None:  # watch new files before reading them
                self._watcher.follow(self._files.tails())
            await self._drain(touched, emit)
            await self._expire_orphans(emit)
            for finding in self.unmatched.check(loop_time(), self._clock.monotonic()):
                emit(finding)
            for waiter in waiting:
                if not waiter.done():
                    waiter.set_result(None)

    def _take_changes(self) -> Changes:
        changes, self._changes = self._changes, Changes()
        return changes

    def _interval(self) -> float:
        busy = self.polling or any(True for _ in self._files.orphans())
        return self._timing.fallback_poll_interval if busy else self._timing.poll_interval

    def _apply(self, changes: Changes) -> set[Tail]:
        now = self._clock.monotonic()
        touched: set[Tail] = set()
        if changes.directories_changed:
            touched |= self._replan()
        for path in changes.paths:
            tail = self._files.reconcile(path, now)
            if tail is not None:
                touched.add(tail)
                self._trust.evented(tail)
        return touched

    def _replan(self) -> set[Tail]:
        if self._watcher is not None:
            self._watcher.set_roots(self._globs.watch_roots())
        return set(self._files.discover(self._clock.monotonic()))

    def _tick(self) -> set[Tail]:
        """The safety net: re-stat everything, and notice when inotify stays silent."""
        now = self._clock.monotonic()
        touched = self._replan()
        for path in list(self._files.by_path):
            self._files.reconcile(path, now)
        for tail in self._files.tails():
            news = tail.has_news()
            self._trust.ticked(tail, news)
            if news:
                touched.add(tail)
        self._trust.tick_done()
        return touched

    async def _drain(self, tails: set[Tail], emit: Emit) -> None:
        """Read the tails a chunk at a time, taking turns, until none has more; news
        arriving meanwhile joins the turns."""
        turns = deque(sorted(tails, key=lambda t: t.path))
        queued = set(turns)
        moved = False
        while turns:
            tail = turns.popleft()
            queued.discard(tail)
            before = tail.offset
            more = self._read_chunk(tail, emit)
            moved = moved or tail.offset != before
            if more:
                turns.append(tail)
                queued.add(tail)
            if not turns:
                break
            await asyncio.sleep(0)  # a long backlog must not starve the health server
            for news in self._apply(self._take_changes()) - queued:
                turns.append(news)
                queued.add(news)
        if moved:
            self.moved.set()

    def _read_chunk(self, tail: Tail, emit: Emit) -> bool:
        """Read and scan one chunk; whether more may follow. A tail that cannot be read
        is given up and its path refused (tried again later, from where it stopped)."""
        if tail.fd < 0:
            return False
        truncations = tail.truncations
        try:
            block, more = tail.read_once()
        except NotFollowable as exc:
            self._files.refuse_tail(tail, exc.kind, exc.detail, self._clock.monotonic())
            return False
        except OSError as exc:
            detail = f"{exc.strerror or exc}"
            self._files.refuse_tail(tail, refusals.UNREADABLE, detail, self._clock.monotonic())
            return False
        if tail.truncations != truncations:
            self._scanner.forget(tail)
        if block is not None:
            self._scanner.scan(tail, block, emit)
        return more

    async def _expire_orphans(self, emit: Emit) -> None:
        now = self._clock.monotonic()
        expired = [
            tail
            for tail in self._files.orphans()
            if tail.orphaned_at is not None and now - tail.orphaned_at >= self._timing.rotate_wait
        ]
        if expired:  # one may have moved to a matching name we have not looked at yet
            self._files.discover(now)
        for tail in expired:
            if tail.orphaned_at is None:
                continue
            await self._drain({tail}, emit)
            block = tail.lines.flush()
            if block is not None:
                self._scanner.scan(tail, block, emit)
            self._files.forget(tail)
            self._scanner.forget(tail)


def _age(now: float, then: float | None) -> float | None:
    return None if then is None else now - then
