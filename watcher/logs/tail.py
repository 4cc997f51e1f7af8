"""One followed log file: an open descriptor, an offset, and the unfinished last line.

A tail follows an *inode*, not a name. After a rename rotation it keeps reading the old
inode through its descriptor (a writer may still hold it open) while a new tail follows
the new file at the old name.
"""

import contextlib
import os
import stat
from dataclasses import dataclass
from typing import Any

from watcher.logs.lines import Block, LineAssembler
from watcher.state.cursors import HEAD_BYTES, Cursor

SIGNATURE_BYTES = 32
"""Bytes just before the offset remembered to notice a copytruncate followed by a
rewrite past our offset, which the size alone cannot reveal."""
REREAD_MAX = 64 << 10
"""An unfinished line up to this long is read again with the next chunk, which then
holds whole lines as read, instead of being copied behind it (`LineAssembler.feed`)."""
KMSG = (1, 11)
"""Major and minor device numbers of /dev/kmsg."""


class NotFollowable(Exception):
    """A path that can be opened but not followed as a log: a FIFO, a device, the
    kernel log, a UTF-16 file. ``kind`` is one of `watcher.logs.refusals.KINDS`."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def refuse_special(st: os.stat_result) -> None:
    """Raise NotFollowable unless ``st`` is a regular file."""
    if stat.S_ISREG(st.st_mode):
        return
    if stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == KMSG:
        raise NotFollowable(
            "kernel_log",
            "a character device whose records are not lines of a file; kernel Xid "
            "lines reach the watcher through a file a node agent writes, or the GPU monitor",
        )
    kind = {
        stat.S_IFIFO: "a FIFO (named pipe)",
        stat.S_IFSOCK: "a socket",
        stat.S_IFCHR: "a character device",
        stat.S_IFBLK: "a block device",
        stat.S_IFDIR: "a directory",
    }.get(stat.S_IFMT(st.st_mode), "not a regular file")
    raise NotFollowable("not_regular", kind)


def refuse_encoding(head: bytes) -> None:
    """Raise NotFollowable if a file beginning with ``head`` is UTF-16: the rules match
    bytes as they are, and UTF-16 text would never match them."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise NotFollowable("unsupported_encoding", "UTF-16 (it begins with a byte-order mark)")
    sample = head[:64]
    if len(sample) >= 8:
        even, odd = sample[0::2], sample[1::2]
        if (odd.count(0) == len(odd) and 0 not in even) or (
            even.count(0) == len(even) and 0 not in odd
        ):
            raise NotFollowable("unsupported_encoding", "UTF-16 (every other byte is NUL)")


@dataclass(frozen=True, slots=True)
class FileId:
    """Identity of a file, independent of its name."""

    dev: int
    ino: int

    @classmethod
    def of(cls, st: os.stat_result) -> "FileId":
        return cls(st.st_dev, st.st_ino)

    def __str__(self) -> str:
        return f"{self.dev}:{self.ino}"


class Tail:
    """Reads what one file gained since the last read, a chunk at a time."""

    def __init__(
        self, path: str, fd: int, file_id: FileId, offset: int, *, max_line: int, chunk: int
    ) -> None:
        self.path = path
        self.fd = fd
        self.file_id = file_id
        self.offset = offset
        self.chunk = chunk
        self.lines = LineAssembler(max_line)
        self.orphaned_at: float | None = None
        """Monotonic time the file left its watched name (rotated or deleted)."""
        self.truncations = 0
        self._signature = b""
        if offset > 0:
            length = min(SIGNATURE_BYTES, offset)
            self._signature = os.pread(fd, length, offset - length)

    @classmethod
    def open(
        cls,
        path: str,
        *,
        from_end: bool,
        resume: Cursor | None,
        max_line: int,
        chunk: int,
    ) -> "Tail | None":
        """Open ``path``; None if it vanished. Raises NotFollowable for what is not a
        regular file (looked at before opening: opening a device can have effects) or
        is UTF-16, and OSError when it cannot be opened (EACCES, EMFILE, EIO...).

        ``resume`` (a saved cursor) wins over ``from_end`` when it is the same inode and
        the file still begins as it did; if that inode shrank below the offset it was
        truncated, so read it whole. Another file (a new one that got the inode number
        back) is read from its beginning too.
        """
        try:
            refuse_special(os.stat(path))
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            st = os.fstat(fd)
            refuse_special(st)
            refuse_encoding(os.pread(fd, 64, 0))
        except BaseException:
            os.close(fd)
            raise
        file_id = FileId.of(st)
        if resume is not None and FileId(resume.dev, resume.ino) == file_id:
            same = _begins_with(fd, resume.head)
            offset = resume.offset if same and 0 <= resume.offset <= st.st_size else 0
        else:
            offset = st.st_size if from_end else 0
        try:
            return cls(path, fd, file_id, offset, max_line=max_line, chunk=chunk)
        except BaseException:
            os.close(fd)
            raise

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def has_news(self) -> bool:
        """Whether a read would return anything, or the file was truncated."""
        return self.size() != self.offset

    def read_once(self) -> tuple[Block | None, bool]:
        """Read one chunk. Returns the whole lines it completes and whether more may follow."""
        self._check_truncation()
        again = self.lines.pending if self.lines.pending <= REREAD_MAX else 0
        data = os.pread(self.fd, self.chunk + again, self.offset - again)
        if len(data) <= again:
            return None, False
        start = self.offset
        if start == 0:
            refuse_encoding(data)
        fresh = len(data) - again
        self.offset += fresh
        if fresh >= SIGNATURE_BYTES:
            self._signature = data[-SIGNATURE_BYTES:]
        else:
            self._signature = (self._signature + data[again:])[-SIGNATURE_BYTES:]
        block = self.lines.feed(data, start - again, with_carry=again > 0)
        return block, len(data) == self.chunk + again

    def _check_truncation(self) -> None:
        size = self.size()
        if size >= self.offset and self._signature_holds():
            return
        self.truncations += 1
        self.offset = 0
        self._signature = b""
        self.lines.reset()

    def _signature_holds(self) -> bool:
        if not self._signature:
            return True
        at = self.offset - len(self._signature)
        return os.pread(self.fd, len(self._signature), at) == self._signature

    def status(self, now: float) -> dict[str, Any]:
        """What /status shows of this file (``now``: the monotonic clock)."""
        return {
            "path": self.path,
            "inode": str(self.file_id),
            "offset": self.offset,
            "pending_bytes": self.lines.pending,
            "truncations": self.truncations,
            "cut_lines": self.lines.cut_lines,
            "rotated_for_s": None if self.orphaned_at is None else now - self.orphaned_at,
        }

    def head(self) -> bytes:
        """The file's first bytes, for a cursor: they tell this file from a new one that
        gets the same inode number after a delete."""
        try:
            return os.pread(self.fd, HEAD_BYTES, 0)
        except OSError:
            return b""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = -1


def _begins_with(fd: int, head: bytes) -> bool:
    if not head:
        return True
    try:
        return os.pread(fd, len(head), 0) == head
    except OSError:
        return False
