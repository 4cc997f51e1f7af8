"""Read cursors: how far each file was scanned, so a restarted watcher misses nothing.

Saved atomically (temporary file written whole, fsync, rename) in the state directory. A cursor is
only trusted for the same inode it was taken on, and only while the file still begins
with the bytes it began with then: a file deleted and recreated while the watcher was
away may get the same inode number back.
"""

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watcher.state.durable import replace_atomically

log = logging.getLogger(__name__)

FILENAME = "cursors.json"


@dataclass(frozen=True, slots=True)
class Cursor:
    dev: int
    ino: int
    offset: int
    head: bytes = b""
    """The file's first bytes (up to `HEAD_BYTES`) when the cursor was taken; empty in
    cursor files from before this field, which are then trusted on the inode alone."""


HEAD_BYTES = 64


@dataclass(frozen=True)
class CursorSnapshot:
    """Everything in the cursor file."""

    files: dict[str, Cursor]
    acknowledged_restart: str | None
    """Id of the last ledger restart a start of this watcher has already seen."""


class CursorStore:
    """Loads and saves the cursor file.

    A save writes a temporary whole, fsyncs and renames it: on a full disk (or any
    error) the temporary is removed and the last good cursor file stays.
    """

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILENAME
        self._last_saved: bytes | None = None
        self.load_error: str | None = None
        """Why the cursor file there could not be used (unreadable, not cursors)."""
        self.save_failures = 0
        self.last_save_error: str | None = None

    def load(self) -> CursorSnapshot | None:
        """The saved cursors, or None if there are none or they cannot be read (then
        ``load_error`` says why, and a warning is logged). Never raises."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            return self._unusable(f"cannot read it: {exc.strerror or exc}")
        try:
            return _snapshot(json.loads(data))
        except RecursionError:
            return self._unusable("not cursors: nested too deeply")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return self._unusable(f"not cursors: {type(exc).__name__} {exc}"[:200])

    def _unusable(self, why: str) -> CursorSnapshot | None:
        self.load_error = why
        log.warning(
            "ignoring the saved read cursors: files are positioned as on a first start",
            extra={"fields": {"path": str(self.path), "error": why}},
        )
        return None

    def save(self, snapshot: CursorSnapshot) -> bool:
        """Write the snapshot if it changed. Blocking. Returns whether it wrote; raises
        OSError (the old file kept) if it could not."""
        record = {
            "acknowledged_restart": snapshot.acknowledged_restart,
            "files": {
                path: {"dev": c.dev, "ino": c.ino, "offset": c.offset, "head": c.head.hex()}
                for path, c in sorted(snapshot.files.items())
            },
        }
        data = json.dumps(record, separators=(",", ":")).encode("utf-8")
        if data == self._last_saved:
            return False
        try:
            replace_atomically(self.path, data)
        except OSError as exc:
            self.save_failures += 1
            self.last_save_error = f"{exc.strerror or exc}"
            raise
        self._last_saved = data
        return True

    def status(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "load_error": self.load_error,
            "save_failures": self.save_failures,
            "last_save_error": self.last_save_error,
        }


def _snapshot(record: Any) -> CursorSnapshot:
    files = {}
    for path, c in record["files"].items():
        if not isinstance(path, str):
            raise TypeError("a path is not a string")
        dev, ino, offset = c["dev"], c["ino"], c["offset"]
        if not all(_count(n) for n in (dev, ino, offset)):
            raise TypeError(f"dev, ino and offset of {path!r} are not counts")
        files[path] = Cursor(dev, ino, offset, bytes.fromhex(c.get("head", "")))
    acknowledged = record.get("acknowledged_restart")
    if acknowledged is not None and not isinstance(acknowledged, str):
        raise TypeError("acknowledged_restart is not a string")
    return CursorSnapshot(files, acknowledged)


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
