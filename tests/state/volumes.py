"""Real trouble for the state directory: a small, fillable volume, an exhausted
descriptor table, and a file whose reads fail with EIO."""

import contextlib
import errno
import os
import resource
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

SMALL = 64 << 10
"""The size of the state volume in the issue: 64 KiB."""


@contextlib.contextmanager
def small_volume(path: Path, size: int = SMALL) -> Iterator[Path]:
    """A tmpfs of ``size`` bytes mounted at ``path`` (made if missing); unmounted after.
    Skips the test where this process may not mount (not root, no CAP_SYS_ADMIN)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a {size}-byte tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill(directory: Path, name: str = "filler") -> int:
    """Fill the volume of ``directory`` to the last byte; returns the bytes written."""
    written = 0
    with (directory / name).open("ab", buffering=0) as handle:
        for block in (4096, 512, 1):
            while True:
                try:
                    written += handle.write(b"\0" * block) or 0
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    assert os.statvfs(directory).f_bavail == 0
    return written


def free(directory: Path, size: int, name: str = "filler") -> None:
    """Give ``size`` bytes back from the filler: the next large write is cut short."""
    filler = directory / name
    os.truncate(filler, filler.stat().st_size - size)


@contextlib.contextmanager
def descriptors_exhausted(spare: int = 0) -> Iterator[None]:
    """Every descriptor of this process in use but ``spare``: the next opens fail with
    EMFILE. The soft limit is lowered to make that cheap, and restored after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held: list[int] = []
    in_use = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 32, hard))
    try:
        while True:
            try:
                held.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
            except OSError as exc:
                assert exc.errno == errno.EMFILE
                break
        for _ in range(min(spare, len(held))):
            os.close(held.pop())
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def make_eio(path: Path) -> None:
    """Make every read of ``path`` fail with a real EIO from the kernel: it becomes a
    link to /proc/self/mem, whose offset 0 is never mapped in the reading process."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    path.symlink_to("/proc/self/mem")
