"""File-system notifications delivered to the event loop, from two sources.

- Structure (files created, deleted, moved; directories too): watchdog's inotify
  observer, which follows directory trees and pairs moves. It calls back on its own
  thread; the handler records the paths and schedules one delivery on the loop, and
  changes arriving before the loop runs it are merged into it.
- Modifications of the followed files (`watcher.logs.writes`): an inotify descriptor of
  our own, read on the event loop, with one watch per followed inode. A write costs one
  loop wake-up and no thread hand-off: through watchdog it cost about 8 context
  switches (its reader, emitter and dispatcher threads, then the loop), and half of the
  CPU at a training log's rate.
"""

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import BaseObserver, ObservedWatch

from watcher.logs.globs import WatchRoot
from watcher.logs.tail import Tail
from watcher.logs.writes import ModificationReader

log = logging.getLogger(__name__)

EVENTS = (
    FileCreatedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
)
"""What watchdog reports: structure only. Without `FileModifiedEvent` its inotify mask
has no IN_MODIFY, so its threads never wake for a write."""
MOVE_PAIRING_WAIT = 0.02
"""Seconds watchdog may hold a move event to pair it (its default is 0.5)."""


@dataclass
class Changes:
    """What happened since the last delivery."""

    paths: set[str] = field(default_factory=set)
    directories_changed: bool = False


Deliver = Callable[[Changes], None]


class FsWatcher(Protocol):
    """Something that reports changed paths under a set of directories."""

    def start(self) -> None: ...

    def set_roots(self, roots: list[WatchRoot]) -> None: ...

    def follow(self, tails: Iterable[Tail]) -> None:
        """Report modifications of exactly these files from now on."""

    def is_alive(self) -> bool: ...

    def stop(self) -> None: ...


class _Handler(FileSystemEventHandler):
    def __init__(self, loop: asyncio.AbstractEventLoop, deliver: Deliver) -> None:
        self._loop = loop
        self._deliver = deliver
        self._lock = threading.Lock()
        self._pending: Changes | None = None

    def on_any_event(self, event: FileSystemEvent) -> None:
        with self._lock:
            first = self._pending is None
            pending = self._pending = self._pending or Changes()
            if event.is_directory:
                pending.directories_changed = True
            pending.paths.add(_text(event.src_path))
            if event.dest_path:
                pending.paths.add(_text(event.dest_path))
        if first:
            with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
                self._loop.call_soon_threadsafe(self._flush)

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            self._deliver(pending)


class InotifyWatcher:
    """watchdog's observer on the given roots, re-planned whenever the roots change, and
    our own reader for the writes to the followed files."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        deliver: Deliver,
        observer_factory: Callable[[], BaseObserver] | None = None,
    ) -> None:
        self._observer = (observer_factory or default_observer)()
        self._handler = _Handler(loop, deliver)
        self._modifications = ModificationReader(loop, lambda paths: deliver(Changes(paths)))
        self._watches: dict[WatchRoot, tuple[ObservedWatch, tuple[int, int]]] = {}
        """Each watched root with the identity (device, inode) of the directory watched."""

    def start(self) -> None:
        self._observer.start()
        self._modifications.start()

    def follow(self, tails: Iterable[Tail]) -> None:
        self._modifications.follow(tails)

    def set_roots(self, roots: list[WatchRoot]) -> None:
        """Watch exactly ``roots``. A root whose directory was deleted, replaced or moved
        since it was scheduled is scheduled again: inotify watches an inode, not a name,
        and watchdog ends the watch of a deleted directory (whose inode may be reused)."""
        wanted = set(roots)
        dead = {emitter.watch for emitter in self._observer.emitters if not emitter.is_alive()}
        for root, (watch, identity) in list(self._watches.items()):
            if root not in wanted or watch in dead or _identity(root.path) != identity:
                del self._watches[root]
                with contextlib.suppress(KeyError, OSError):
                    self._observer.unschedule(watch)
        for root in wanted - set(self._watches):
            current = _identity(root.path)
            if current is None:
                continue
            try:
                watch = self._observer.schedule(  # follow a symlinked log directory
                    self._handler,
                    root.path,
                    recursive=root.recursive,
                    event_filter=list(EVENTS),
                    follow_symlink=True,
                )
            except OSError as exc:  # gone already, or out of inotify watches
                log.warning(
                    "cannot watch directory",
                    extra={"fields": {"path": root.path, "error": str(exc)}},
                )
                continue
            self._watches[root] = (watch, current)

    def is_alive(self) -> bool:
        return bool(self._observer.is_alive()) and self._modifications.is_alive()

    def stop(self) -> None:
        """Closing an inotify descriptor that still has watches waits for the kernel to
        free them: an SRCU grace period, 0.1-35 ms here, and a second one if a second
        descriptor frees its watches after the first wait began. So both descriptors'
        watches go first; watchdog's close then waits once for all of them, and ours
        closes with nothing left to wait for (exit 88 measured 35 ms median without
        this ordering, 13 ms with watchdog alone)."""
        self._modifications.release()
        self._observer.stop()
        self._modifications.close()


def default_observer() -> BaseObserver:
    """watchdog's inotify observer, with its move pairing wait cut to ``MOVE_PAIRING_WAIT``.

    watchdog holds every IN_MOVED_FROM for 0.5 s hoping to pair it with an IN_MOVED_TO,
    and every later event waits behind it: a file rotated *out* of the watched directory
    delays detection of everything else by half a second (measured 0.50 s). We never
    need the pairing (every event only makes us re-stat the path), and a rename inside a
    directory delivers both halves in the same read, so a short wait still pairs those.
    `delay` is a public class attribute of watchdog's grouper, read when a watch starts.
    """
    from watchdog.observers.inotify import InotifyObserver
    from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper

    InotifyMoveEventGrouper.delay = MOVE_PAIRING_WAIT
    return InotifyObserver()


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _text(path: bytes | str) -> str:
    return path.decode("utf-8", "surrogateescape") if isinstance(path, bytes) else path
