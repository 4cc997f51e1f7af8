"""The watcher's side of the GPU relay's files in the launcher's ``run/`` directory.

The watcher asks in ``gpu-relay.json`` (replaced atomically, only when it changes); the
relay (`watcher/launcher/gpu_relay.py`) answers in ``gpu-report.json`` and holds
``gpu-relay.lock`` while it runs; the launcher holds ``launcher.lock``. The files are
small and on the Pod's emptyDir: read inline, bounded in size. A report that is not one
(torn, foreign, garbage) reads as none.
"""

import contextlib
import errno
import fcntl
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watcher.launcher.channel import LAUNCHER_LOCK
from watcher.launcher.gpu_relay import RELAY_LOCK, REPORT, REQUEST, VERSION

MAX_REPORT = 4 << 20
"""Bytes: two streams of at most 256 KiB each, JSON-escaped."""


@dataclass(frozen=True)
class Report:
    """One report of the relay (see `gpu_relay.Relay._report` for the fields)."""

    pid: int
    seq: int
    mono: float
    """CLOCK_MONOTONIC when written: the node's clock, shared by the Pod's containers."""
    start: int | None = None
    evidence: str | None = None
    uuids: tuple[str, ...] = ()
    tool: str | None = None
    tool_path: str | None = None
    tool_problem: str | None = None
    poll: dict[str, Any] | None = None
    cost: dict[str, Any] = field(default_factory=dict)
    done: str | None = None
    """Why the relay ended on purpose (no GPU in the trainer's container...), else None."""


def parse_report(data: bytes) -> Report | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    if not isinstance(value, dict) or value.get("version") != VERSION:
        return None
    pid, seq, mono = value.get("pid"), value.get("seq"), value.get("mono")
    if not isinstance(pid, int) or not isinstance(seq, int) or not isinstance(mono, int | float):
        return None
    poll, cost = value.get("poll"), value.get("cost")
    uuids = value.get("uuids")
    return Report(
        pid=pid,
        seq=seq,
        mono=float(mono),
        start=_int(value.get("start")),
        evidence=_text(value.get("evidence")),
        uuids=tuple(u for u in uuids if isinstance(u, str)) if isinstance(uuids, list) else (),
        tool=_text(value.get("tool")),
        tool_path=_text(value.get("tool_path")),
        tool_problem=_text(value.get("tool_problem")),
        poll=poll if isinstance(poll, dict) else None,
        cost=cost if isinstance(cost, dict) else {},
        done=_text(value.get("done")),
    )


class RelayFiles:
    """The request, the report and the two locks, in ``run_dir``. Blocking, small."""

    def __init__(self, run_dir: Path) -> None:
        self.run = run_dir
        self._asked: dict[str, Any] | None = None

    def ask(self, request: dict[str, Any]) -> None:
        """Put ``request`` in place unless it is there already (the relay re-reads the file
        when it changes). Raises OSError."""
        if request == self._asked and (self.run / REQUEST).exists():
            return
        record = {**request, "version": VERSION, "id": uuid.uuid4().hex}
        temporary = self.run / f".{REQUEST}.{os.getpid()}.tmp"
        try:
            temporary.write_bytes(json.dumps(record, separators=(",", ":")).encode())
            os.chmod(temporary, 0o644)
            temporary.replace(self.run / REQUEST)
        except OSError:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        self._asked = dict(request)

    def report(self) -> Report | None:
        try:
            with open(self.run / REPORT, "rb") as handle:
                data = handle.read(MAX_REPORT + 1)
        except OSError:
            return None
        return None if len(data) > MAX_REPORT else parse_report(data)

    def relay_alive(self) -> bool:
        return _held(self.run / RELAY_LOCK)

    def launcher_running(self) -> bool:
        return _held(self.run / LAUNCHER_LOCK)


def _held(path: Path) -> bool:
    """Whether another process holds an flock on ``path`` (across containers: one kernel)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(fd)
    return False


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
