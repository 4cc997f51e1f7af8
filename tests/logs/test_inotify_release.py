"""Dropping the process's inotify watches before an exit, with watchdog's real observer."""

import ctypes
import os
import threading
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.inotify import InotifyObserver

from watcher.logs.inotify_release import drop_inotify_watches


def inotify_watches() -> dict[int, int]:
    """This process's inotify descriptors and how many watches each holds."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") != "anon_inode:inotify":
                continue
            with open(f"/proc/self/fdinfo/{name}", encoding="ascii") as info:
                found[int(name)] = sum(line.startswith("inotify wd:") for line in info)
        except OSError:
            continue
    return found


class Seen(FileSystemEventHandler):
    def __init__(self) -> None:
        self.events: list[FileSystemEvent] = []
        self.created = threading.Event()

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.events.append(event)
        if event.event_type == "created":
            self.created.set()


def test_the_watches_of_a_running_observer_are_dropped_and_it_still_stops(
    tmp_path: Path,
) -> None:
    observer = InotifyObserver()
    seen = Seen()
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        observer.schedule(seen, str(tmp_path / sub))
    observer.start()
    try:
        (tmp_path / "a" / "first.log").write_text("x")
        assert seen.created.wait(5), "the observer saw nothing"
        assert sum(inotify_watches().values()) >= 2
        assert drop_inotify_watches() >= 2
        assert sum(inotify_watches().values()) == 0
        seen.created.clear()
        (tmp_path / "b" / "later.log").write_text("x")
        assert not seen.created.wait(0.3), "a dropped watch still reported"
    finally:
        observer.stop()
        observer.join(5)
    assert not observer.is_alive()


def test_a_bare_instance_loses_its_watches_and_closes(tmp_path: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(os.O_CLOEXEC)
    assert fd >= 0
    try:
        for sub in ("x", "y"):
            (tmp_path / sub).mkdir()
            assert libc.inotify_add_watch(fd, str(tmp_path / sub).encode(), 0x2) > 0
        assert inotify_watches()[fd] == 2
        assert drop_inotify_watches() >= 2
        assert inotify_watches()[fd] == 0
    finally:
        os.close(fd)
    assert fd not in inotify_watches()
