"""Writes that either land whole or leave the old state in place.

`os.write` may write less than it was given (a full disk, a signal, a pipe), so every
write here loops until all of it is written or an error is raised. A file replaced
atomically is first written whole to a temporary next to it and fsynced; on any failure
the temporary is removed and the old file stays as it was.
"""

import contextlib
import errno
import os
from pathlib import Path


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``, or raise OSError."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # never for a regular file; do not spin if it happens
            raise OSError(errno.EIO, "write made no progress")
        view = view[written:]


def fsync_directory(path: Path) -> None:
    """Make a new or renamed entry of ``path`` durable (best effort: not every file
    system lets a directory be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(path: Path, data: bytes, *, sync_directory: bool = False) -> None:
    """Replace ``path`` with ``data``: all of it, or (on any OSError) nothing changes."""
    temporary = path.with_name(path.name + ".tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    if sync_directory:
        fsync_directory(path.parent)
