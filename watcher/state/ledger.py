"""The ledger: an append-only JSON-lines record of every action, in the state directory.

It lives on an emptyDir, which survives in-place restarts, so it is the memory that
enforces the restart budget (Kubernetes itself never caps in-place restarts) and tells
the next start that it follows a restart this watcher asked for.
"""

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FILENAME = "ledger.jsonl"
KEEP = 1000
"""Entries kept when the file is compacted at start; far more than any budget window needs."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One action the watcher took (or held back from)."""

    action: str
    """``restart``, ``evict`` or ``hold``."""
    reason: str
    time: float
    """Wall-clock seconds since the epoch."""
    explanation: str = ""
    fault_class: str = ""
    evidence: tuple[str, ...] = ()
    file: str | None = None
    offset: int | None = None
    exit_code: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_json(self) -> str:
        record = asdict(self)
        record["time_iso"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.time))
        return json.dumps(record, separators=(",", ":"), default=str)

    @classmethod
    def from_json(cls, line: str) -> "LedgerEntry":
        record = json.loads(line)
        record.pop("time_iso", None)
        record["evidence"] = tuple(record.get("evidence", ()))
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{key: value for key, value in record.items() if key in known})


class Ledger:
    """The entries on disk plus an in-memory copy for the policy's questions."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILENAME
        self.entries: list[LedgerEntry] = []
        self.skipped_lines = 0
        """Lines that could not be read back (a write torn by a kill)."""

    def load(self) -> None:
        """Read the file; compact it when it grew past ``KEEP`` entries. Blocking."""
        try:
            text = self.path.read_text("utf-8", errors="replace")
        except FileNotFoundError:
            return
        entries = []
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                entries.append(LedgerEntry.from_json(line))
            except (ValueError, TypeError):
                self.skipped_lines += 1
        self.entries = entries[-KEEP:]
        if len(entries) > KEEP:
            self._rewrite()

    def append(self, entry: LedgerEntry) -> None:
        """Append one entry durably (write, fsync). Blocking: call it with a deadline."""
        line = (entry.to_json() + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.entries.append(entry)

    def actions(self, action: str) -> list[LedgerEntry]:
        return [entry for entry in self.entries if entry.action == action]

    def last(self, action: str) -> LedgerEntry | None:
        found = self.actions(action)
        return found[-1] if found else None

    def _rewrite(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text("".join(e.to_json() + "\n" for e in self.entries), "utf-8")
        temporary.replace(self.path)
