"""The files in ``run/`` that the launcher and the watcher share.

The launcher appends its starts and the command's exits to ``launcher.jsonl``; the watcher
answers in ``verdict.json`` and asks for a stop in ``control.json``, each tagged with the
start it is about. The watcher holds an flock on ``watcher.lock`` while it runs.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time

from .settings import Settings, say, write_all

RUN_DIR = "run"
RECORDS = "launcher.jsonl"
VERDICT = "verdict.json"
CONTROL = "control.json"
LOCK = "watcher.lock"
"""Held (flock) by the watcher while it runs."""
LAUNCHER_LOCK = "launcher.lock"
"""Held by the launcher while it runs: a watcher that restarts alone sees the trainer live."""
VERDICTS = ("restart", "release", "hold")


class Channel:
    """The files shared with the watcher in ``run/``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        os.makedirs(os.path.join(settings.home, RUN_DIR), exist_ok=True)
        self.start = self._count_starts() + 1
        self._control_stamp: tuple[float, int] | None = None
        self._lock_fd = -1

    def _path(self, name: str) -> str:
        return os.path.join(self.settings.home, RUN_DIR, name)

    def _count_starts(self) -> int:
        try:
            with open(self._path(RECORDS), "rb") as handle:
                return sum(1 for line in handle if b'"event":"start"' in line)
        except OSError:
            return 0

    def record(self, event: str, **fields: object) -> None:
        record = dict(event=event, start=self.start, time=round(time.time(), 6), **fields)
        line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        try:
            fd = os.open(self._path(RECORDS), flags, 0o644)
            try:
                write_all(fd, line)
            finally:
                os.close(fd)
        except OSError as exc:
            say(f"cannot record the {event} for the watcher: {exc}")

    def _read(self, name: str) -> dict[str, object] | None:
        try:
            with open(self._path(name), "rb") as handle:
                value = json.loads(handle.read(1 << 16).decode("utf-8", "replace"))
        except (OSError, ValueError):
            return None
        if isinstance(value, dict) and value.get("start") == self.start:
            return value
        return None

    def verdict(self) -> dict[str, object] | None:
        value = self._read(VERDICT)
        return value if value is not None and value.get("verdict") in VERDICTS else None

    def stop_request(self) -> dict[str, object] | None:
        """A new stop request for this start, if control.json changed since the last look."""
        try:
            st = os.stat(self._path(CONTROL))
        except OSError:
            return None
        stamp = (st.st_mtime, st.st_size)
        if stamp == self._control_stamp:
            return None
        self._control_stamp = stamp
        value = self._read(CONTROL)
        return value if value is not None and value.get("action") == "stop" else None

    def watcher_present(self) -> bool | None:
        """Whether a watcher holds its lock (it does while it runs); None if none ever ran."""
        try:
            fd = os.open(self._path(LOCK), os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
        finally:
            os.close(fd)
        return False

    def hold_launcher_lock(self) -> None:
        """Hold ``launcher.lock`` for the life of this process (never inherited)."""
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        try:
            self._lock_fd = os.open(self._path(LAUNCHER_LOCK), flags, 0o644)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            say(f"cannot hold {LAUNCHER_LOCK} ({exc}): is another launcher using this directory?")
