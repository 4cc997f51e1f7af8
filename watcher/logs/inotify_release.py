"""Drop this process's inotify watches just before it exits, so that the exit is not slow.

Closing an inotify instance that still holds watches makes the kernel wait for a grace
period (fsnotify's SRCU) before the descriptor is gone, and a process's exit closes its
descriptors before its parent, the kubelet's runtime, learns of it. Measured on the 2-core
VM: two instances with one watch each added 7 ms to an exit (p90 11 ms), and 20-25 ms under
load; with the watches removed a few milliseconds ahead (`inotify_rm_watch` only queues
them for that grace period) the close costs nothing. In `bench.run`, write -> exit 88 went
from a median of 24.6 ms (p90 40.8) to 15.5-17.1 ms (p90 19-20).

The watches are found the way proc(5) documents: each `anon_inode:inotify` descriptor in
/proc/self/fd, its watch descriptors in /proc/self/fdinfo. watchdog, which owns them, sees
IN_IGNORED for each and forgets it; nothing is read after this anyway.
"""

import os

_FD_DIR = "/proc/self/fd"
_INFO_DIR = "/proc/self/fdinfo"


def drop_inotify_watches() -> int:
    """Remove every inotify watch of this process; return how many were removed. Never
    raises: a watch that cannot be removed is closed with its descriptor at exit."""
    import ctypes  # here, not at import: an idle watcher never loads it

    try:
        names = os.listdir(_FD_DIR)
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return 0
    removed = 0
    for name in names:
        for wd in _watches(name):
            if libc.inotify_rm_watch(int(name), wd) == 0:
                removed += 1
    return removed


def _watches(name: str) -> list[int]:
    """The watch descriptors of descriptor ``name`` if it is an inotify instance."""
    try:
        if os.readlink(f"{_FD_DIR}/{name}") != "anon_inode:inotify":
            return []
        with open(f"{_INFO_DIR}/{name}", encoding="ascii") as info:
            lines = [line for line in info if line.startswith("inotify wd:")]
    except (OSError, UnicodeDecodeError):
        return []
    return [int(line.split()[1].removeprefix("wd:"), 16) for line in lines]
