"""Which files are followed, by name and by inode, and what rotation did to them.

Everything here is decided from `stat()`, never from which event arrived: events only
say "look at this path again". So lost, merged or reordered inotify events cannot leave
the bookkeeping wrong, only late.
"""

import errno
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from watcher.logs import refusals
from watcher.logs.descriptors import DescriptorBudget
from watcher.logs.globs import GlobSet
from watcher.logs.refusals import Refusals
from watcher.logs.tail import FileId, NotFollowable, Tail
from watcher.state.cursors import Cursor

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OpenPolicy:
    """How to position a file when we first open it."""

    from_end: bool
    """Begin at the end of files that exist at start (else at their beginning)."""
    resume: dict[str, Cursor]
    """Saved cursors by path, used when the inode still matches."""


class TrackedFiles:
    """The open tails, found by path and by inode, plus orphans still being drained."""

    def __init__(self, globs: GlobSet, *, max_files: int, max_line: int, chunk: int) -> None:
        self.globs = globs
        self.max_files = max_files
        self._max_line = max_line
        self._chunk = chunk
        self.by_path: dict[str, Tail] = {}
        self.by_id: dict[FileId, Tail] = {}
        self._descriptors = DescriptorBudget()
        self.refused = Refusals()
        """Matching paths not followed, why, and where reading starts once admitted:
        where it would have started when they were first refused."""

    def __len__(self) -> int:
        return len(self.by_id)

    def tails(self) -> list[Tail]:
        return list(self.by_id.values())

    def orphans(self) -> Iterator[Tail]:
        return (tail for tail in self.by_id.values() if tail.orphaned_at is not None)

    def open_existing(self, policy: OpenPolicy, now: float) -> list[Tail]:
        """Follow every file the globs match now; positions follow ``policy``. A resumed
        file that was rotated meanwhile is drained from its cursor as an orphan."""
        opened = []
        for path in self.globs.expand():
            cursor = policy.resume.get(path)
            tail = self._open(path, from_end=policy.from_end, cursor=cursor, now=now)
            if tail is not None:
                opened.append(tail)
        for path, cursor in policy.resume.items():
            if FileId(cursor.dev, cursor.ino) not in self.by_id:
                tail = self._rotated_away(path, cursor, now)
                if tail is not None:
                    opened.append(tail)
        for pattern in self.globs.patterns:
            if os.path.isdir(pattern):  # a literal path naming a directory: a typo
                detail = f"a directory: did you mean {os.path.join(pattern, '*.log')}?"
                self.refused.refuse(pattern, refusals.NOT_REGULAR, detail, Cursor(0, 0, 0), now)
        return opened

    def _rotated_away(self, path: str, cursor: Cursor, now: float) -> Tail | None:
        """The inode we were reading at ``path``, now under another name in the same
        directory (`train.log.1`): opened at the cursor to read what it gained meanwhile."""
        fields: dict[str, object] = {"path": path, "unread_after": cursor.offset}
        rotated = _find_inode(os.path.dirname(path), FileId(cursor.dev, cursor.ino))
        if rotated is None:
            log.warning(
                "a followed file was replaced while the watcher was away and its old "
                "inode is gone: what was written to it after the cursor cannot be read",
                extra={"fields": fields},
            )
            return None
        tail = self._open(rotated, from_end=False, cursor=cursor, now=now, limit=False)
        if tail is not None:
            log.info(
                "reading the end of a file rotated while the watcher was away",
                extra={"fields": {**fields, "now_at": rotated}},
            )
            self._orphan(tail, now)
        return tail

    def reconcile(self, path: str, now: float) -> Tail | None:
        """Look at ``path`` again; return the tail that may have news for it.

        Handles: a name now pointing at another inode (rotation, delete-and-recreate),
        a name gone (delete, rename away), a followed inode showing up under a new name
        (rename within the directory), and a new matching file (read from its start).
        """
        tail = self.by_path.get(path)
        found = _stat_any(path)
        st = found if found is not None and stat.S_ISREG(found.st_mode) else None
        if tail is not None and (st is None or FileId.of(st) != tail.file_id):
            self._orphan(tail, now)
        if found is None:
            self.refused.admit(path)  # gone: nothing to remember about it
        if st is None:
            if found is not None and not stat.S_ISDIR(found.st_mode) and self.globs.matches(path):
                self._open(path, from_end=False, cursor=None, now=now, limit=False)  # why not
            return tail
        known = self.by_id.get(FileId.of(st))
        if known is not None:
            moved = known.path != path and not _points_to(known.path, known.file_id)
            if moved and self.globs.matches(path):
                self._rebind(known, path)
            return known
        if not self.globs.matches(path):
            return tail
        refused = self.refused.get(path)
        start = None if refused is None else refused.start
        return self._open(path, from_end=False, cursor=start, now=now)

    def discover(self, now: float) -> list[Tail]:
        """Open matching files we do not follow yet (after a directory appeared), and
        try the refused ones again."""
        self.refused.forget_missing()
        self.refused.flush(now)
        found = []
        for path in self.globs.expand():
            if path not in self.by_path:
                tail = self.reconcile(path, now)
                if tail is not None:
                    found.append(tail)
        return found

    def forget(self, tail: Tail) -> None:
        """Stop following an orphan for good."""
        self.by_id.pop(tail.file_id, None)
        if self.by_path.get(tail.path) is tail:
            del self.by_path[tail.path]
        tail.close()

    def close(self) -> None:
        for tail in self.tails():
            self.forget(tail)

    def cursors(self) -> dict[str, Cursor]:
        """Where each followed (non-orphaned) file was scanned up to."""
        cursors = {}
        for path, tail in self.by_path.items():
            offset = tail.lines.next_offset
            cursors[path] = Cursor(
                tail.file_id.dev,
                tail.file_id.ino,
                tail.offset if offset is None else offset,
                tail.head(),
            )
        return cursors

    def followed(self) -> int:
        """Files counted against ``max_files``: those at a watched name. Rotated-away
        inodes still being drained do not count (they leave within the rotate wait)."""
        return len(self.by_path)

    def refuse_tail(self, tail: Tail, kind: str, detail: str, now: float) -> None:
        """Stop following ``tail`` (it could not be read) and refuse its path, to be
        resumed where it stopped once it can be read again."""
        start = Cursor(tail.file_id.dev, tail.file_id.ino, tail.offset)
        at_name = self.by_path.get(tail.path) is tail
        self.forget(tail)
        if at_name:
            self.refused.refuse(tail.path, kind, detail, start, now)

    def _open(
        self, path: str, *, from_end: bool, cursor: Cursor | None, now: float, limit: bool = True
    ) -> Tail | None:
        refusal = self._refusal(limit)
        if refusal is None:
            try:
                tail = Tail.open(
                    path,
                    from_end=from_end,
                    resume=cursor,
                    max_line=self._max_line,
                    chunk=self._chunk,
                )
            except NotFollowable as exc:
                refusal = exc.kind, exc.detail
            except OSError as exc:
                out = exc.errno in (errno.EMFILE, errno.ENFILE)
                refusal = refusals.DESCRIPTORS if out else refusals.UNREADABLE, _error(exc)
            else:
                if tail is None:
                    return None
                self._descriptors.opened()
                self.refused.admit(path)
                self.by_path[path] = tail
                self.by_id[tail.file_id] = tail
                return tail
        kind, detail = refusal
        self.refused.refuse(path, kind, detail, _start_cursor(path, from_end, cursor), now)
        return None

    def _refusal(self, limit: bool) -> tuple[str, str] | None:
        if limit and self.followed() >= self.max_files:
            return refusals.TOO_MANY, f"max_files={self.max_files}"
        short = self._descriptors.short()
        return None if short is None else (refusals.DESCRIPTORS, short)

    def _orphan(self, tail: Tail, now: float) -> None:
        if self.by_path.get(tail.path) is tail:
            del self.by_path[tail.path]
        if tail.orphaned_at is None:
            tail.orphaned_at = now

    def _rebind(self, tail: Tail, path: str) -> None:
        if self.by_path.get(tail.path) is tail:
            del self.by_path[tail.path]
        tail.path = path
        tail.orphaned_at = None
        self.by_path[path] = tail


def _find_inode(directory: str, file_id: FileId) -> str | None:
    """The path of the regular file with ``file_id`` directly in ``directory``, if any."""
    try:
        with os.scandir(directory or ".") as entries:
            for entry in entries:
                if entry.inode() == file_id.ino and entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    if FileId.of(st) == file_id:
                        return entry.path
    except OSError:
        return None
    return None


def _start_cursor(path: str, from_end: bool, cursor: Cursor | None) -> Cursor:
    """Where reading a refused file would have started, as a cursor to use on admission."""
    st = _stat(path)
    if st is None:
        return Cursor(0, 0, 0)
    file_id = FileId.of(st)
    if cursor is not None and (cursor.dev, cursor.ino) == (file_id.dev, file_id.ino):
        return cursor
    return Cursor(file_id.dev, file_id.ino, st.st_size if from_end else 0)


def _error(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0)
    return f"{exc.strerror or exc}" + (f" ({name})" if name else "")


def _stat_any(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None


def _points_to(path: str, file_id: FileId) -> bool:
    st = _stat(path)
    return st is not None and FileId.of(st) == file_id


def _stat(path: str) -> os.stat_result | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st if stat.S_ISREG(st.st_mode) else None
