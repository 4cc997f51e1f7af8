"""Paths the globs match but the log monitor cannot follow, and why: told, not hidden.

Each kind of refusal is logged (the first few of each kind per minute one by one, the
rest summed up), shown in /status and counted for /metrics. A refused path keeps the
position reading will start at once it can be followed, decided when it was first
refused: a file present at start and unreadable then is read, once readable, from where
any file present at start is read (its end, by default), not from byte 0.
"""

import logging
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

from watcher.state.cursors import Cursor

log = logging.getLogger(__name__)

TOO_MANY = "too_many_files"
DESCRIPTORS = "descriptors"
UNREADABLE = "unreadable"
NOT_REGULAR = "not_regular"
KERNEL_LOG = "kernel_log"
ENCODING = "unsupported_encoding"
KINDS = (TOO_MANY, DESCRIPTORS, UNREADABLE, NOT_REGULAR, KERNEL_LOG, ENCODING)
MESSAGES = {
    TOO_MANY: "too many files: not following this one (WATCHER_MAX_FILES)",
    DESCRIPTORS: "too few file descriptors left: not following this one for now",
    UNREADABLE: "cannot read a log file: not following it until it can be read",
    NOT_REGULAR: "a log path is not a regular file: not following it",
    KERNEL_LOG: "the kernel log (/dev/kmsg) is not supported as a log path: not following it",
    ENCODING: "a log file is UTF-16, which is not supported: not following it",
}
BURST = 5
"""Warnings of one kind logged one by one per `PERIOD`; the rest are summed up."""
PERIOD = 60.0
SHOWN = 20
"""Refused paths listed in /status; the rest are counted."""


@dataclass(frozen=True, slots=True)
class Refusal:
    kind: str
    detail: str
    start: Cursor
    """Where reading starts once the path can be followed."""


class Refusals:
    """The refused paths, by path, with warnings capped and rate-limited."""

    def __init__(self) -> None:
        self.by_path: dict[str, Refusal] = {}
        self.total: Counter[str] = Counter()
        """Refusals ever made, by kind (a path counts again after it was followed)."""
        self._window: dict[str, tuple[float, int, int]] = {}
        """Kind -> start of its warning window, warnings logged in it, warnings held back."""

    def __contains__(self, path: str) -> bool:
        return path in self.by_path

    def __len__(self) -> int:
        return len(self.by_path)

    def get(self, path: str) -> Refusal | None:
        return self.by_path.get(path)

    def refuse(self, path: str, kind: str, detail: str, start: Cursor, now: float) -> None:
        """Record (once per path and kind) that ``path`` is not followed."""
        known = self.by_path.get(path)
        if known is not None and known.kind == kind:
            return
        self.by_path[path] = Refusal(kind, detail, known.start if known else start)
        self.total[kind] += 1
        self._warn(kind, {"path": path, "detail": detail}, now)

    def admit(self, path: str) -> None:
        self.by_path.pop(path, None)

    def forget_missing(self) -> int:
        """Drop paths that no longer exist; returns how many."""
        gone = [path for path in self.by_path if not os.path.lexists(path)]
        for path in gone:
            del self.by_path[path]
        return len(gone)

    def flush(self, now: float) -> None:
        """Log the summaries of warning windows that have ended."""
        for kind, (start, _, held) in list(self._window.items()):
            if now - start >= PERIOD:
                del self._window[kind]
                if held:
                    self._summary(kind, held)

    def counts(self) -> dict[str, int]:
        """Paths refused now, by kind (every kind present, for metrics)."""
        now = Counter(refusal.kind for refusal in self.by_path.values())
        return {kind: now[kind] for kind in KINDS}

    def status(self) -> dict[str, Any]:
        shown = sorted(self.by_path.items())[:SHOWN]
        return {
            "count": len(self.by_path),
            "by_kind": {kind: n for kind, n in self.counts().items() if n},
            "paths": [{"path": path, "why": r.kind, "detail": r.detail} for path, r in shown],
        }

    def _warn(self, kind: str, fields: dict[str, Any], now: float) -> None:
        start, logged, held = self._window.get(kind, (now, 0, 0))
        if now - start >= PERIOD:
            if held:
                self._summary(kind, held)
            start, logged, held = now, 0, 0
        if logged >= BURST:
            self._window[kind] = (start, logged, held + 1)
            return
        self._window[kind] = (start, logged + 1, held)
        log.warning(MESSAGES[kind], extra={"fields": {**fields, "why": kind}})

    def _summary(self, kind: str, held: int) -> None:
        log.warning(
            "%s (and %d more like it in the last %gs; see /status)",
            MESSAGES[kind],
            held,
            PERIOD,
            extra={"fields": {"why": kind, "more": held, "refused_now": self.counts()[kind]}},
        )
