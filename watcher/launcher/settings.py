"""The launcher's knobs (``POD_WATCHER_*`` variables) and its two output helpers.

Everything in this package runs inside the trainer's container on Python 3.8+ with the
standard library alone, so it is written for 3.8 and imports nothing from the watcher.
"""

from __future__ import annotations

import contextlib
import os

BATCH = 0.05
"""Once output flows, the pipes are read on this beat instead of at every write: a
trainer printing 100 times a second costs 20 wake-ups, not 100 (about what `tee` costs in
C), for at most 50 ms of delay. The first line after a quiet spell, and an exit, come at
once. POD_WATCHER_BATCH sets it (0: read at every write)."""


def _env_number(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    try:
        value = float(text) if text else default
    except ValueError:
        value = -1.0
    if not value >= 0:
        say(f"ignoring {name}={text!r}: not a number >= 0; using {default:g}")
        return default
    return value


class Settings:
    """Knobs, from ``POD_WATCHER_*`` variables; the defaults suit a Pod."""

    def __init__(self, home: str) -> None:
        self.home = os.environ.get("POD_WATCHER_DIR") or home
        self.log_max_bytes = int(_env_number("POD_WATCHER_LOG_MAX_BYTES", 16 << 20))
        self.log_backups = max(1, int(_env_number("POD_WATCHER_LOG_BACKUPS", 2)))
        self.verdict_timeout = _env_number("POD_WATCHER_VERDICT_TIMEOUT", 30.0)
        self.absent_wait = _env_number("POD_WATCHER_ABSENT_WAIT", 3.0)
        self.restart_wait = _env_number("POD_WATCHER_RESTART_WAIT", 60.0)
        self.stop_grace = _env_number("POD_WATCHER_STOP_GRACE", 30.0)
        self.batch = min(1.0, _env_number("POD_WATCHER_BATCH", BATCH))
        self.termination_log = os.environ.get("POD_WATCHER_TERMINATION_LOG", "/dev/termination-log")


def say(message: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, (f"pod-watcher launch: {message}\n").encode("utf-8", "replace"))


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
