"""Log lines on stdout: one JSON object per line for machines, or plain text for people.

Anything a module wants in the record beyond the message goes in ``extra={"fields": {...}}``.

Logging never blocks the caller. A record is formatted where it is logged and handed
to a bounded queue; one writer thread puts the lines on stdout. When stdout is a pipe
nobody drains (a stalled log collector), the writer blocks, the queue fills, and further
lines are dropped and counted (`dropped_lines`), with one line saying how many once
stdout moves again. Flushing at exit waits at most `FLUSH_TIMEOUT`, so neither the event
loop nor the last words before an exit ever wait for stdout.
"""

import contextlib
import json
import logging
import os
import queue
import sys
import threading
import time
from typing import Any, TextIO

QUEUE_LINES = 2048
"""Lines waiting for stdout; more are dropped and counted."""
FLUSH_TIMEOUT = 0.05
"""Seconds a flush (at exit) waits for the writer to empty the queue."""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        extra = " ".join(f"{key}={value!r}" for key, value in fields.items())
        line = f"{_iso(record.created)} {record.levelname:<7} {record.getMessage()}"
        line = f"{line}  {extra}" if extra else line
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class NonBlockingHandler(logging.Handler):
    """Formats on the caller's thread, writes on its own; drops rather than waits."""

    def __init__(self, stream: TextIO, lines: int = QUEUE_LINES) -> None:
        super().__init__()
        self._stream = stream
        self._fd = _fileno(stream)
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=lines)
        self.dropped = 0
        """Lines dropped because stdout did not take them fast enough."""
        self._reported = 0
        self._writer = threading.Thread(target=self._write_lines, name="log-writer", daemon=True)
        self._writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = (self.format(record) + "\n").encode("utf-8", "backslashreplace")
        except Exception:  # a broken record must not break the caller
            self.handleError(record)
            return
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            self.dropped += 1

    def flush(self) -> None:
        """Wait (at most `FLUSH_TIMEOUT`) until the queued lines are written."""
        deadline = time.monotonic() + FLUSH_TIMEOUT
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.001)

    def close(self) -> None:
        """Let the writer end once the queue is written (`logging.shutdown` flushes
        first, with its deadline; this does not wait again)."""
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        super().close()

    def _write_lines(self) -> None:
        while True:
            line = self._queue.get()
            try:
                if line is None:
                    return
                if self.dropped > self._reported:
                    self._write(self._summary())
                self._write(line)
            finally:
                self._queue.task_done()

    def _summary(self) -> bytes:
        dropped, self._reported = self.dropped - self._reported, self.dropped
        record = logging.LogRecord(
            __name__, logging.WARNING, __file__, 0,
            "dropped %d log lines: stdout was not read fast enough", (dropped,), None,
        )  # fmt: skip
        record.__dict__["fields"] = {"dropped": dropped, "dropped_total": self.dropped}
        return (self.format(record) + "\n").encode("utf-8", "backslashreplace")

    def _write(self, data: bytes) -> None:
        try:
            if self._fd is None:
                self._stream.write(data.decode("utf-8", "replace"))
                self._stream.flush()
                return
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(self._fd, view) :]
                except BlockingIOError:  # a non-blocking stdout: wait for room
                    time.sleep(0.01)
        except (OSError, ValueError):
            self.dropped += 1  # stdout closed: nothing to be done but count


def setup_logging(fmt: str, level: str, stream: TextIO | None = None) -> NonBlockingHandler:
    """Send every log record to ``stream`` (stdout) in the chosen format, never blocking."""
    for old in logging.getLogger().handlers:
        if isinstance(old, NonBlockingHandler):
            old.close()
    handler = NonBlockingHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return handler


def dropped_lines() -> int:
    """Log lines dropped so far because stdout did not take them (for metrics)."""
    return sum(h.dropped for h in logging.getLogger().handlers if isinstance(h, NonBlockingHandler))


def _fileno(stream: TextIO) -> int | None:
    """The descriptor to write to directly (never through the stream's buffer, which
    a flush at exit would then wait on); None for a stream without one."""
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _iso(created: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
        + f".{int(created % 1 * 1000):03d}Z"
    )
