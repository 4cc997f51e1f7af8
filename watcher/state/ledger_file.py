"""The ledger's file: appends that land whole or not at all, on a volume that may fill up,
run out of descriptors, or vanish.

- The descriptor is opened at start and kept, so an exhausted descriptor table (EMFILE)
  cannot keep a restart from being recorded.
- Each append is written whole (short writes are looped) and fsynced. If it fails half
  way, the torn bytes are cut off again; if even that fails, the next append starts on a
  fresh line, so a torn line never glues onto the next entry.
- A reserve file (`RESERVE_BYTES`) is kept next to the ledger. When the volume is full,
  it is given up and the append tried once more: a full state volume still records the
  next restart or two, and then refuses.
- A ledger file that vanished (the file or the whole state directory deleted) is
  written back from the entries in memory before the append.
"""

import contextlib
import errno
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watcher.state.durable import replace_atomically, write_all

log = logging.getLogger(__name__)

RESERVE_NAME = "ledger.reserve"
RESERVE_BYTES = 16 << 10
"""Space held back for the ledger on a volume that fills up: two entries or more."""


class LedgerFile:
    """Appends, reads and compacts the ledger file; counts what went wrong."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reserve_path = path.with_name(RESERVE_NAME)
        self.failures = 0
        """Appends that raised."""
        self.last_error: str | None = None
        self.restored = 0
        """Times the file had vanished and was written back from memory."""
        self.reserve = "not made"
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None

    def read_lines(self, limit: int) -> list[str]:
        """The file's lines (its last ``limit`` bytes); [] if it does not exist."""
        try:
            with self.path.open("rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size > limit:
                    handle.seek(size - limit)
                data = handle.read(limit)
        except FileNotFoundError:
            return []
        if size > limit:  # the first line read is a piece of one
            data = data[data.find(b"\n") + 1 :]
        return data.decode("utf-8", "replace").split("\n")

    def prepare(self) -> None:
        """Open the descriptor and make the reserve, best effort (both are retried)."""
        with contextlib.suppress(OSError):
            self._descriptor(lambda: b"")
        self._make_reserve()

    def append(self, line: bytes, everything: Callable[[], bytes]) -> None:
        """Append ``line`` whole and fsync it, or raise OSError. ``everything`` gives
        the whole ledger as it should be, to write back a vanished file."""
        try:
            fd = self._descriptor(everything)
            self._write(fd, line)
        except OSError as exc:
            self.failures += 1
            self.last_error = f"{exc.strerror or exc}"
            log.error(
                "cannot record in the ledger",
                extra={"fields": {"path": str(self.path), "error": self.last_error}},
            )
            raise

    def ensure(self, everything: Callable[[], bytes]) -> None:
        """Write the file back from memory if it vanished since it was opened (best
        effort: the next append tries again and raises)."""
        if self._identity is None or os.path.exists(self.path):
            return
        try:
            self._restore(everything())
        except OSError as exc:
            log.error("cannot write back the vanished ledger: %s", exc.strerror or exc)
        self.close()

    def compact(self, data: bytes) -> None:
        """Replace the file with ``data`` (at start, when it grew too long); best effort."""
        try:
            replace_atomically(self.path, data, sync_directory=True)
        except OSError as exc:
            log.warning("cannot compact the ledger: %s", exc.strerror or exc)
        self.close()

    def status(self) -> dict[str, Any]:
        return {
            "append_failures": self.failures,
            "last_append_error": self.last_error,
            "restored_from_memory": self.restored,
            "reserve": self.reserve,
        }

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = self._identity = None

    def _descriptor(self, everything: Callable[[], bytes]) -> int:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = self._restore(everything())
        identity = (st.st_dev, st.st_ino)
        if self._fd is not None and identity == self._identity:
            return self._fd
        self.close()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            os.close(fd)
            raise OSError(errno.EINVAL, f"{self.path} is not a regular file")
        self._fd, self._identity = fd, (opened.st_dev, opened.st_ino)
        return fd

    def _restore(self, data: bytes) -> os.stat_result:
        """Create the file, or write it back from memory if it vanished."""
        existed = self._identity is not None
        os.makedirs(self.path.parent, exist_ok=True)
        replace_atomically(self.path, data, sync_directory=True)
        if existed:
            self.restored += 1
            log.warning(
                "the ledger file vanished: written back from memory",
                extra={"fields": {"path": str(self.path), "bytes": len(data)}},
            )
        return os.stat(self.path)

    def _write(self, fd: int, line: bytes) -> None:
        size = os.fstat(fd).st_size
        torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
        data = b"\n" + line if torn else line
        try:
            _write_synced(fd, data, size)
        except OSError as exc:
            if exc.errno != errno.ENOSPC or not self._release_reserve():
                raise
            _write_synced(fd, data, size)

    def _make_reserve(self) -> None:
        try:
            if os.stat(self.reserve_path).st_size >= RESERVE_BYTES:
                self.reserve = "ready"
                return
        except FileNotFoundError:
            pass
        except OSError as exc:
            self.reserve = f"unavailable: {exc.strerror or exc}"
            return
        try:
            fd = os.open(self.reserve_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.posix_fallocate(fd, 0, RESERVE_BYTES)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(self.reserve_path)
            self.reserve = f"unavailable: {exc.strerror or exc}"
            log.warning(
                "cannot keep space in reserve for the ledger: a full state volume will "
                "refuse the next restart",
                extra={"fields": {"path": str(self.reserve_path), "error": self.reserve}},
            )
            return
        self.reserve = "ready"

    def _release_reserve(self) -> bool:
        try:
            os.unlink(self.reserve_path)
        except OSError:
            return False
        self.reserve = "used: the state volume is full"
        log.error(
            "the state volume is full: gave up the ledger's reserve to record this entry",
            extra={"fields": {"path": str(self.path)}},
        )
        return True


def _write_synced(fd: int, data: bytes, size: int) -> None:
    """Write and fsync ``data`` at the end of the file (``size`` bytes long before); on
    failure cut the file back to ``size``, so no torn line is left behind."""
    try:
        write_all(fd, data)
        os.fsync(fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise
