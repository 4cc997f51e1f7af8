"""Writes to the followed files, read on the event loop: one inotify watch per inode.

A write costs one loop wake-up and no thread hand-off (through watchdog it cost about 8
context switches: its reader, emitter and dispatcher threads, then the loop). Writes that
land before the loop reads are merged by the kernel into one event, and while writes come
fast they are read once a window.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from inotify_simple import INotify, flags

from watcher.logs.tail import FileId, Tail

log = logging.getLogger(__name__)

DeliverPaths = Callable[[set[str]], None]
"""Called on the loop with the paths (as followed) of the files that were written."""

COALESCE_WINDOW = 0.02
"""While writes come faster than one per window, modifications are read once a window:
a burst costs one wake-up, and a line written during it waits at most this long. The
first write after a quiet spell is read at once. At 100 writes/s this halves the loop's
wake-ups (CPU at 1 MB/s: 3.7 % of a core read on every event, 2.5 % with 20 ms,
1.8 % with 30 ms)."""


class ModificationReader:
    """IN_MODIFY of each followed inode, read on the event loop.

    A watch is added through the tail's open descriptor (`/proc/self/fd/N`), so it is on
    the inode being read, whatever name it has now: a file rotated away keeps reporting
    while it is drained. The kernel merges identical unread events, so one read of the
    descriptor covers every write since the last one.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: DeliverPaths) -> None:
        self._loop = loop
        self._deliver = deliver
        self._inotify = INotify(nonblocking=True)
        self._by_file: dict[FileId, int] = {}
        self._by_wd: dict[int, Tail] = {}
        self._refused: set[FileId] = set()
        self._reading = False
        self._stopped = False
        self._last_delivery = -COALESCE_WINDOW
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._listen()

    def _listen(self) -> None:
        self._loop.add_reader(self._inotify.fileno(), self._on_event)
        self._reading = True

    def _on_event(self) -> None:
        """An event after a quiet spell is delivered now; one soon after a delivery
        starts a busy spell, in which events are left to the kernel, which merges them,
        and read once a window."""
        due = self._last_delivery + COALESCE_WINDOW
        if self._loop.time() >= due:
            self._read()
            return
        self._loop.remove_reader(self._inotify.fileno())
        self._reading = False
        self._timer = self._loop.call_at(due, self._on_window)

    def _on_window(self) -> None:
        self._timer = None
        if self._read():
            self._timer = self._loop.call_later(COALESCE_WINDOW, self._on_window)
        elif not self._stopped:
            self._listen()  # quiet again

    def follow(self, tails: Iterable[Tail]) -> None:
        wanted = {tail.file_id: tail for tail in tails if tail.fd >= 0}
        for file_id in self._by_file.keys() - wanted.keys():
            old = self._by_file.pop(file_id)
            self._by_wd.pop(old, None)
            with contextlib.suppress(OSError):  # gone with its inode already
                self._inotify.rm_watch(old)
        for file_id, tail in wanted.items():
            known = self._by_file.get(file_id)
            wd = self._watch(tail) if known is None else known
            if wd is not None:
                self._by_file[file_id] = wd
                self._by_wd[wd] = tail
        self._refused.intersection_update(wanted)

    def _watch(self, tail: Tail) -> int | None:
        try:
            return int(self._inotify.add_watch(f"/proc/self/fd/{tail.fd}", flags.MODIFY))
        except OSError as exc:  # out of inotify watches: the safety-net tick still reads it
            if tail.file_id not in self._refused:
                self._refused.add(tail.file_id)
                fields = {"path": tail.path, "error": str(exc)}
                log.warning("cannot watch file for writes", extra={"fields": fields})
            return None

    def _read(self) -> bool:
        """Deliver what the events since the last read name; whether there were any."""
        paths: set[str] = set()
        try:
            events = self._inotify.read(timeout=0)
        except OSError as exc:
            log.warning("cannot read inotify events", extra={"fields": {"error": str(exc)}})
            events = []
        for event in events:
            if event.mask & flags.Q_OVERFLOW:
                paths.update(tail.path for tail in self._by_wd.values())
                continue
            tail = self._by_wd.get(event.wd)
            if tail is None:
                continue
            if event.mask & flags.IGNORED:  # its inode is gone: `follow` forgets it
                del self._by_wd[event.wd]
                self._by_file.pop(tail.file_id, None)
            paths.add(tail.path)
        if paths:
            self._last_delivery = self._loop.time()
            self._deliver(paths)
        return bool(events)

    def is_alive(self) -> bool:
        return not self._stopped

    def release(self) -> None:
        """Stop reading and remove every watch, but keep the descriptor (see `close`)."""
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
        if self._reading:
            self._loop.remove_reader(self._inotify.fileno())
            self._reading = False
        for wd in self._by_wd:
            with contextlib.suppress(OSError):
                self._inotify.rm_watch(wd)
        self._by_wd.clear()
        self._by_file.clear()

    def close(self) -> None:
        self.release()
        self._inotify.close()
