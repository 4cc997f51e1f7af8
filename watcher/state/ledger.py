"""The ledger: an append-only JSON-lines record of every action, in the state directory.

It lives on an emptyDir, which survives in-place restarts, so it is the memory that
enforces the restart budget (Kubernetes itself never caps in-place restarts) and tells
the next start that it follows a restart this watcher asked for.

It fails closed. `Ledger.append` returns only once the entry is on disk (written whole,
fsynced) and raises OSError otherwise, so the caller can refuse a restart it cannot
record. A torn line (a kill or a full disk mid-write) is cut off or, failing that, never
glued to the next entry. A full volume is met with a small reserve kept next to the
ledger; a ledger file that vanished is rewritten from memory. Reading back never
crashes: lines that are not entries are skipped, counted and shown.

Ages are safe against clock steps: each entry records the system-wide monotonic clock
and the boot it was taken in, so within one boot (every in-place restart) the age of an
entry is exact whatever the wall clock did. Entries from another boot, or from before
these fields, are placed on the monotonic clock when read, by their wall-clock age, and
an entry from the future counts as just now.
"""

import errno
import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from watcher.clock import Clock, SystemClock
from watcher.state.ledger_file import LedgerFile
from watcher.state.records import RecordError, from_record

log = logging.getLogger(__name__)

FILENAME = "ledger.jsonl"
KEEP = 1000
"""Entries kept when the file is compacted at start; far more than any budget window needs."""
MAX_ENTRY_BYTES = 8 << 10
"""Longest line written; longer entries lose evidence first. Bounds the file to about
``KEEP`` times this (8 MiB) plus what one run adds."""
MAX_READ_BYTES = 32 << 20
"""Most of the file read at start (its end); the rest is older than anything kept."""
EXAMPLES = 5
STEP = 1.0
"""Seconds between the wall clock and the monotonic one that count as a clock step."""
"""Skipped lines described in /status."""


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
    boot_id: str = ""
    """The kernel's boot id when the entry was written (stamped by `Ledger.append`)."""
    monotonic: float | None = None
    """The system-wide monotonic clock at ``time`` (same boot only; stamped by the ledger)."""

    def to_json(self) -> str:
        record = asdict(self)
        record["time_iso"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.time))
        return json.dumps(record, separators=(",", ":"), default=str)

    @classmethod
    def from_json(cls, line: str) -> "LedgerEntry":
        """Parse one line; ValueError (RecordError) if it is not an entry."""
        try:
            record = json.loads(line)
        except RecursionError:
            raise RecordError("nested too deeply") from None
        return from_record(cls, record)


class Ledger:
    """The entries on disk plus an in-memory copy for the policy's questions."""

    def __init__(
        self, state_dir: Path, *, clock: Clock | None = None, boot_id: str | None = None
    ) -> None:
        self.path = state_dir / FILENAME
        self.entries: list[LedgerEntry] = []
        self.skipped_lines = 0
        """Lines that could not be read back (a torn write, JSON that is not an entry)."""
        self.skipped_examples: list[str] = []
        self.read_error: str | None = None
        """Why the file could not be read at all (EIO...); None when it could."""
        self._clock = clock or SystemClock()
        self._boot_id = current_boot_id() if boot_id is None else boot_id
        self._at: dict[str, float] = {}
        """Entry id -> when it happened, on the monotonic clock."""
        self._file = LedgerFile(self.path)

    @property
    def file(self) -> LedgerFile:
        """The file itself: its failures, reserve and descriptor."""
        return self._file

    def load(self) -> None:
        """Read the file; compact it when it grew past ``KEEP`` entries. Blocking. Never
        raises: what cannot be read is counted, logged and shown in `status`."""
        self.skipped_lines, self.skipped_examples = 0, []
        try:
            lines = self._file.read_lines(MAX_READ_BYTES)
        except OSError as exc:
            self.read_error = f"{exc.strerror or exc}"
            log.error(
                "cannot read the ledger: the restart budget is unknown, and restarts "
                "cannot be recorded until it can be read",
                extra={"fields": {"path": str(self.path), "error": self.read_error}},
            )
            return
        self.read_error = None
        parsed = (self._parse(number, line) for number, line in enumerate(lines, 1))
        entries = [entry for entry in parsed if entry is not None]
        self.entries = entries[-KEEP:]
        self._at = {entry.id: self._place(entry) for entry in self.entries}
        self.entries = [self._rebased(entry) for entry in self.entries]
        if self.skipped_lines:
            log.warning(
                "skipped ledger lines that are not entries",
                extra={"fields": {"count": self.skipped_lines, "examples": self.skipped_examples}},
            )
        if len(entries) > KEEP:
            self._file.compact(self._lines())
        self._file.prepare()

    def _parse(self, number: int, line: str) -> LedgerEntry | None:
        if not line.strip():
            return None
        try:
            return LedgerEntry.from_json(line)
        except ValueError as exc:
            self.skipped_lines += 1
            if len(self.skipped_examples) < EXAMPLES:
                self.skipped_examples.append(f"line {number}: {exc}"[:200])
            return None

    def append(self, entry: LedgerEntry) -> None:
        """Append one entry durably (written whole, fsynced), or raise OSError and keep
        nothing of it. Blocking: call it with a deadline."""
        if self.read_error is not None:
            self.load()  # maybe the error was passing
            if self.read_error is not None:
                why = f"the ledger could not be read ({self.read_error})"
                raise OSError(errno.EIO, f"{why}: the restart budget is unknown, nothing recorded")
        entry = self._stamp(entry)
        try:
            line = _fit(entry).to_json().encode("utf-8") + b"\n"
        except (ValueError, TypeError, OverflowError) as exc:  # e.g. a time gmtime refuses
            raise OSError(errno.EINVAL, f"the entry cannot be written as JSON: {exc}") from None
        self._file.append(line, self._lines)
        self.entries.append(entry)
        self._at[entry.id] = entry.monotonic if entry.monotonic is not None else self._now()

    def ensure(self) -> None:
        """Write the ledger back from memory if its file vanished (the state directory
        deleted while running): the next start must still see the budget spent."""
        self._file.ensure(self._lines)

    def close(self) -> None:
        self._file.close()

    def actions(self, action: str) -> list[LedgerEntry]:
        return [entry for entry in self.entries if entry.action == action]

    def last(self, action: str) -> LedgerEntry | None:
        found = self.actions(action)
        return found[-1] if found else None

    def age(self, entry: LedgerEntry) -> float:
        """Seconds since ``entry`` happened, never negative, whatever the wall clock did
        since it was written (see the module docstring)."""
        at = self._at.get(entry.id)
        if at is None:
            at = self._place(entry)
        return max(0.0, self._now() - at)

    def within(self, action: str, window: float) -> list[LedgerEntry]:
        """Entries of ``action`` younger than ``window`` seconds, oldest first; what a
        restart budget counts. Safe against clock steps (see `age`)."""
        return [entry for entry in self.actions(action) if self.age(entry) < window]

    def status(self) -> dict[str, Any]:
        """For /status: how many entries, what could not be read or written."""
        return {
            "path": str(self.path),
            "entries": len(self.entries),
            "skipped_lines": self.skipped_lines,
            "skipped_examples": list(self.skipped_examples),
            "read_error": self.read_error,
            **self._file.status(),
        }

    def _now(self) -> float:
        return self._clock.monotonic()

    def _stamp(self, entry: LedgerEntry) -> LedgerEntry:
        """Put the entry on the monotonic clock: now, less its wall-clock age if the
        caller dated it earlier (never later than now)."""
        wall_age = max(0.0, self._clock.wall() - entry.time)
        return replace(entry, boot_id=self._boot_id, monotonic=self._now() - wall_age)

    def _place(self, entry: LedgerEntry) -> float:
        """When ``entry`` happened on this boot's monotonic clock, as it arrives."""
        now = self._now()
        same_boot = bool(self._boot_id) and entry.boot_id == self._boot_id
        if same_boot and entry.monotonic is not None:
            return min(entry.monotonic, now)
        return now - max(0.0, self._clock.wall() - entry.time)

    def _rebased(self, entry: LedgerEntry) -> LedgerEntry:
        """The entry with ``time`` said on today's wall clock, when the wall clock was
        stepped since it was written (or it is from the future): such a step makes it
        look neither older, nor younger, nor from the future."""
        time_now = self._clock.wall() - (self._now() - self._at[entry.id])
        return entry if abs(time_now - entry.time) < STEP else replace(entry, time=time_now)

    def _lines(self) -> bytes:
        return b"".join(_fit(entry).to_json().encode("utf-8") + b"\n" for entry in self.entries)


def _fit(entry: LedgerEntry) -> LedgerEntry:
    """The entry cut to ``MAX_ENTRY_BYTES`` once serialised: evidence goes first."""
    if len(entry.to_json().encode("utf-8")) <= MAX_ENTRY_BYTES:
        return entry
    cut = tuple(line[:512] for line in entry.evidence[:3])
    smaller = replace(entry, evidence=cut, explanation=entry.explanation[:2048])
    if len(smaller.to_json().encode("utf-8")) <= MAX_ENTRY_BYTES:
        return smaller
    return replace(smaller, evidence=(), details={"cut": "too large for the ledger"})


def restarts(entries: Sequence[LedgerEntry]) -> list[LedgerEntry]:
    """The in-place restarts that happened, oldest first: ``restart`` entries (asked for,
    or only observed), minus those a later start found were never carried out."""
    not_taken = {entry.details.get("ref") for entry in entries if entry.action == "not_taken"}
    return [e for e in entries if e.action == "restart" and e.id not in not_taken]


def current_boot_id() -> str:
    """The kernel's boot id (the same in every container of the node), or "" off Linux."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text("ascii").strip()
    except OSError:
        return ""
