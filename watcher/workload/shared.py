"""The watcher's side of the directory it shares with the launcher.

The launcher appends its starts and the command's exits to ``run/launcher.jsonl``; the
watcher answers each exit in ``run/verdict.json`` and asks for a stop in
``run/control.json``, both tagged with the launcher start they are about, both replaced
atomically. Each side holds an flock while it runs (``watcher.lock``, ``launcher.lock``),
so the other can tell a live peer from a dead one across containers.
"""

import contextlib
import errno
import fcntl
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from watcher.launcher.channel import (
    CONTROL,
    LAUNCHER_LOCK,
    LOCK,
    RECORDS,
    RUN_DIR,
    VERDICT,
)
from watcher.launcher.logcopy import LOG_DIR, LOG_NAME
from watcher.types import Verdict

MAX_RECORD = 1 << 16
"""A launcher record longer than this is not one of ours: skipped."""


@dataclass(frozen=True, slots=True)
class LauncherEvent:
    """One line of ``launcher.jsonl``: a start of the launcher or an exit of its command."""

    event: Literal["start", "exit"]
    start: int
    """Which launcher start (1, 2, ...) within the life of the Pod's emptyDir."""
    time: float
    """Wall-clock seconds, as the launcher's container saw them."""
    fields: dict[str, Any]

    @property
    def status(self) -> int | None:
        """The shell-style exit code of an exit (128 + N for signal N)."""
        value = self.fields.get("status")
        return value if isinstance(value, int) else None


def parse_event(line: bytes) -> LauncherEvent | None:
    """A record, or None for a line that is not one (torn, foreign, garbage)."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    event, start, at = value.get("event"), value.get("start"), value.get("time")
    if event not in ("start", "exit") or not isinstance(start, int) or start < 1:
        return None
    if not isinstance(at, int | float):
        return None
    return LauncherEvent(event, start, float(at), value)


class SharedDir:
    """Paths and files of the shared directory, seen from the watcher. Blocking calls."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.run = root / RUN_DIR
        self.records = self.run / RECORDS
        self.log = root / LOG_DIR / LOG_NAME
        self._lock_fd = -1
        self._offset = 0
        self._inode: int | None = None
        self._partial = b""

    def hold_lock(self) -> None:
        """Hold ``watcher.lock`` until the process ends. Raises OSError when another
        watcher holds it already (two watchers on one directory would both answer)."""
        fd = os.open(self.run / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise
        self._lock_fd = fd

    def launcher_running(self) -> bool:
        """Whether a launcher holds its lock, i.e. the trainer's container runs."""
        try:
            fd = os.open(self.run / LAUNCHER_LOCK, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
        finally:
            os.close(fd)
        return False

    def new_events(self) -> list[LauncherEvent]:
        """Records appended since the last call (all of them on the first call, or when the
        file was replaced). A line still being written waits for its newline."""
        try:
            fd = os.open(self.records, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return []
        try:
            st = os.fstat(fd)
            if st.st_ino != self._inode or st.st_size < self._offset:
                self._inode, self._offset, self._partial = st.st_ino, 0, b""
            data = os.pread(fd, max(0, st.st_size - self._offset), self._offset)
        finally:
            os.close(fd)
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > MAX_RECORD:
            self._partial = b""
        return [event for line in lines if (event := parse_event(line)) is not None]

    def latest_start(self) -> int | None:
        """The number of the launcher's newest start recorded so far, read afresh: a
        decision may be taken before the watcher has seen the start it is about."""
        try:
            data = self.records.read_bytes()
        except FileNotFoundError:
            return None
        starts = [
            event.start
            for line in data.split(b"\n")
            if (event := parse_event(line)) is not None and event.event == "start"
        ]
        return max(starts, default=None)

    def verdict(self, start: int) -> dict[str, Any] | None:
        """The verdict last given for ``start``, if any."""
        try:
            value = json.loads((self.run / VERDICT).read_bytes())
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) and value.get("start") == start else None

    def give_verdict(
        self, start: int, verdict: Verdict, reason: str, wait: float | None = None
    ) -> None:
        record: dict[str, Any] = {"start": start, "verdict": verdict, "reason": reason}
        if wait is not None:
            record["wait"] = round(wait, 3)
        self._replace(VERDICT, record)

    def ask_stop(self, start: int, reason: str, grace: float) -> None:
        self._replace(CONTROL, {"start": start, "action": "stop", "reason": reason, "grace": grace})

    def _replace(self, name: str, record: dict[str, Any]) -> None:
        """Write a new version under a new id, atomically (no fsync: the reader is on this
        node and reads the page cache; after a node crash the Pod is gone anyway)."""
        record = {**record, "id": uuid.uuid4().hex}
        temporary = self.run / f".{name}.{os.getpid()}.tmp"
        data = json.dumps(record, separators=(",", ":")).encode("utf-8")
        try:
            temporary.write_bytes(data)
            os.chmod(temporary, 0o644)
            temporary.replace(self.run / name)
        except OSError:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
