"""The copy of the command's output in the log file the watcher follows."""

from __future__ import annotations

import os

from .settings import Settings, say, write_all

LOG_DIR = "logs"
LOG_NAME = "workload.log"
MAX_PENDING = 1 << 16
"""Bytes of an unfinished line held back from the log file, at most."""
PARTIAL_FLUSH = 1.0
"""Seconds an unfinished line waits for its end before it goes to the log file anyway."""


class LogCopy:
    """The log file: whole lines from each stream, rotated by size, never in the way."""

    def __init__(self, settings: Settings) -> None:
        self.path = os.path.join(settings.home, LOG_DIR, LOG_NAME)
        self.max_bytes = settings.log_max_bytes
        self.backups = settings.log_backups
        self.fd = -1
        self.size = 0
        self.dropped = 0
        self.retry_at = 0.0
        self.pending = {1: b"", 2: b""}
        self.pending_since = {1: 0.0, 2: 0.0}

    def feed(self, stream: int, data: bytes, now: float) -> None:
        buffered = self.pending[stream] + data
        cut = buffered.rfind(b"\n") + 1
        if cut:
            self._write(buffered[:cut], now)
            buffered = buffered[cut:]
        if len(buffered) > MAX_PENDING:
            self._write(buffered, now)
            buffered = b""
        if buffered and not self.pending[stream]:
            self.pending_since[stream] = now
        self.pending[stream] = buffered

    def flush_due(self, now: float, force: bool = False) -> float | None:
        """Write unfinished lines that waited long enough; return when the next one is due."""
        due = None
        for stream, data in self.pending.items():
            if not data:
                continue
            at = self.pending_since[stream] + PARTIAL_FLUSH
            if force or at <= now:
                self.pending[stream] = b""
                self._write(data, now)
            else:
                due = at if due is None else min(due, at)
        return due

    def _write(self, data: bytes, now: float) -> None:
        try:
            if self.fd < 0:
                if now < self.retry_at:
                    self.dropped += len(data)
                    return
                self._open()
            while data:
                piece = self._fitting(data)
                if not piece:
                    self._rotate()
                    continue
                write_all(self.fd, piece)
                self.size += len(piece)
                data = data[len(piece) :]
        except OSError as exc:
            self.dropped += len(data)
            self.close()
            self.retry_at = now + 5.0
            say(f"cannot write {self.path} ({exc}); output is still on stdout")

    def _fitting(self, data: bytes) -> bytes:
        """The whole lines of ``data`` that still fit in the file (b"": rotate first). A
        line longer than a whole file is cut."""
        room = self.max_bytes - self.size
        if len(data) <= room:
            return data
        cut = data.rfind(b"\n", 0, room) + 1
        if cut:
            return data[:cut]
        return data[: self.max_bytes] if self.size == 0 else b""

    def _open(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        self.fd = os.open(self.path, flags, 0o644)
        self.size = os.fstat(self.fd).st_size

    def _rotate(self) -> None:
        self.close()
        for index in range(self.backups, 0, -1):
            older = self.path if index == 1 else f"{self.path}.{index - 1}"
            if os.path.exists(older):
                os.replace(older, f"{self.path}.{index}")
        self._open()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
        self.fd = -1
