"""The watcher's two sources of notifications, on real files with real inotify: writes to
followed files are read on the event loop (watchdog's threads never wake for them), a
burst is read once a window, and a followed inode reports wherever it moved."""

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from watcher.logs.globs import WatchRoot
from watcher.logs.tail import Tail
from watcher.logs.watch import Changes, InotifyWatcher
from watcher.logs.writes import COALESCE_WINDOW

DEADLINE = 5.0


class Deliveries:
    """What the watcher delivered, and on which thread."""

    def __init__(self) -> None:
        self.changes: list[Changes] = []
        self.threads: set[int] = set()
        self.arrived = asyncio.Event()

    def __call__(self, changes: Changes) -> None:
        self.changes.append(changes)
        self.threads.add(threading.get_ident())
        self.arrived.set()

    def paths(self) -> set[str]:
        return {path for changes in self.changes for path in changes.paths}

    async def until(self, path: Path) -> None:
        async with asyncio.timeout(DEADLINE):
            while str(path) not in self.paths():
                self.arrived.clear()
                await self.arrived.wait()


def open_tail(path: Path) -> Tail:
    tail = Tail.open(str(path), from_end=True, resume=None, max_line=1 << 20, chunk=1 << 20)
    assert tail is not None
    return tail


def append(path: Path, data: bytes = b"line\n") -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


@asynccontextmanager
async def watching(directory: Path) -> AsyncIterator[tuple[InotifyWatcher, Deliveries]]:
    deliveries = Deliveries()
    watcher = InotifyWatcher(asyncio.get_running_loop(), deliveries)
    watcher.set_roots([WatchRoot(str(directory), recursive=False)])
    watcher.start()
    try:
        yield watcher, deliveries
    finally:
        watcher.stop()


def switches(thread_ids: set[int]) -> int:
    total = 0
    for tid in thread_ids:
        for line in Path(f"/proc/self/task/{tid}/status").read_text().splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


async def test_writes_are_read_on_the_loop_and_wake_no_watchdog_thread(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.touch()
    tail = open_tail(log)
    loop = asyncio.get_running_loop()
    before = {t.native_id for t in threading.enumerate()}
    async with watching(tmp_path) as (watcher, deliveries):
        watchdog_threads = {t.native_id for t in threading.enumerate()} - before
        assert watchdog_threads, "watchdog's observer threads should be running"
        watcher.follow([tail])
        threads = {t for t in watchdog_threads if t is not None}
        idle, start = switches(threads), loop.time()
        for _ in range(40):
            append(log)
            await asyncio.sleep(COALESCE_WINDOW * 1.5)
        await deliveries.until(log)
        woke = switches(threads) - idle
        # watchdog's observer wakes once a second to look for its stop: nothing more
        assert woke <= len(threads) * (loop.time() - start + 1), woke
    assert deliveries.threads == {threading.get_ident()}
    assert len(deliveries.changes) >= 20
    tail.close()


async def test_a_file_moved_out_of_the_watched_directory_still_reports(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "elsewhere").mkdir()
    log = tmp_path / "logs" / "train.log"
    log.touch()
    tail = open_tail(log)
    async with watching(tmp_path / "logs") as (watcher, deliveries):
        watcher.follow([tail])
        moved = tmp_path / "elsewhere" / "train.log.1"
        os.rename(log, moved)
        await asyncio.sleep(0.05)
        deliveries.changes.clear()
        append(moved)
        await deliveries.until(log)  # reported under the name it was followed by
    tail.close()


async def test_a_burst_is_read_once_a_window(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.touch()
    tail = open_tail(log)
    loop = asyncio.get_running_loop()
    async with watching(tmp_path) as (watcher, deliveries):
        watcher.follow([tail])
        append(log)
        await deliveries.until(log)  # the first write after a quiet spell: at once
        deliveries.changes.clear()
        start = loop.time()
        fd = os.open(log, os.O_WRONLY | os.O_APPEND)
        try:
            for index in range(400):
                os.write(fd, b"line %d\n" % index)
                if index % 50 == 0:
                    await asyncio.sleep(0)  # let the loop see events mid-burst
        finally:
            os.close(fd)
        burst = loop.time() - start
        await asyncio.sleep(3 * COALESCE_WINDOW)
        await deliveries.until(log)
    windows = burst / COALESCE_WINDOW
    assert 1 <= len(deliveries.changes) <= windows + 2, (len(deliveries.changes), windows)
    tail.close()


async def test_a_file_no_longer_followed_is_not_reported(tmp_path: Path) -> None:
    kept, dropped = tmp_path / "kept.log", tmp_path / "dropped.log"
    kept.touch()
    dropped.touch()
    tails = [open_tail(kept), open_tail(dropped)]
    async with watching(tmp_path) as (watcher, deliveries):
        watcher.follow(tails)
        watcher.follow(tails[:1])
        append(dropped)
        await asyncio.sleep(2 * COALESCE_WINDOW)
        append(kept)
        await deliveries.until(kept)
    assert str(dropped) not in deliveries.paths()
    for tail in tails:
        tail.close()


async def test_stop_closes_every_descriptor(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.touch()
    tail = open_tail(log)
    before = set(os.listdir("/proc/self/fd"))
    async with watching(tmp_path) as (watcher, deliveries):
        watcher.follow([tail])
        append(log)
        await deliveries.until(log)
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and thread.daemon:
            thread.join(timeout=DEADLINE)  # watchdog's threads end after stop
    assert set(os.listdir("/proc/self/fd")) <= before
    tail.close()
