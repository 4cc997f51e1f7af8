"""Read cursors: how far each file was scanned, so a restarted watcher misses nothing.

Saved atomically (temporary file, fsync, rename) in the state directory. A cursor is
only trusted for the same inode it was taken on, and only while the file still begins
with the bytes it began with then: a file deleted and recreated while the watcher was
away may get the same inode number back.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    """Loads and saves the cursor file."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILENAME
        self._last_saved: bytes | None = None

    def load(self) -> CursorSnapshot | None:
        """The saved cursors, or None if there are none (or they cannot be read)."""
        try:
            record: Any = json.loads(self.path.read_bytes())
            files = {
                path: Cursor(
                    int(c["dev"]), int(c["ino"]), int(c["offset"]), bytes.fromhex(c.get("head", ""))
                )
                for path, c in record["files"].items()
            }
            return CursorSnapshot(files, record.get("acknowledged_restart"))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def save(self, snapshot: CursorSnapshot) -> bool:
        """Write the snapshot if it changed. Blocking. Returns whether it wrote."""
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
        temporary = self.path.with_name(FILENAME + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        temporary.replace(self.path)
        self._last_saved = data
        return True
