"""Reference processes that say what this machine charges for things the watcher does.

- Interpreter teardown: what returning through Python's shutdown costs after the last
  words, against `os._exit`.
- A bare asyncio loop that wakes on a timer: what one idle wake-up costs here. On some
  VMs a wake-up is charged milliseconds of CPU, which decides the idle CPU figure more
  than anything the watcher does.
"""

import os
import select
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Final

from bench import proc

EXIT_TIMEOUT: Final = 10.0


_TEARDOWN_PROBE: Final = (
    "import sys, os, asyncio, watcher.cli, watcher.service, watcher.config.load, "
    "watcher.reporting.logs; print('x', flush=True); {}"
)


def interpreter_teardown(runs: int) -> tuple[float, float]:
    """Median seconds from "everything imported" to exited, with sys.exit and os._exit.

    What the exit path pays after the last words if it returns through the interpreter's
    shutdown (module teardown, final GC) instead of calling os._exit.
    """
    medians = []
    for ending in ("sys.exit(88)", "os._exit(88)"):
        times = []
        for _ in range(runs):
            code = _TEARDOWN_PROBE.format(ending)
            popen = subprocess.Popen(
                [sys.executable, "-c", code], stdout=subprocess.PIPE, env=proc.python_env()
            )
            try:
                if proc.read_line(popen.stdout, proc.READY_TIMEOUT) != b"x":
                    raise proc.WatcherFailed("the teardown probe did not import watcher")
                start = time.perf_counter()
                fd = os.pidfd_open(popen.pid)
                try:
                    select.select([fd], [], [], EXIT_TIMEOUT)
                finally:
                    os.close(fd)
                times.append(time.perf_counter() - start)
            finally:
                if popen.poll() is None:
                    popen.kill()
                popen.wait(timeout=proc.STOP_TIMEOUT)
                if popen.stdout is not None:
                    popen.stdout.close()
        medians.append(statistics.median(times))
    return medians[0], medians[1]


_IDLE_LOOP: Final = """
import asyncio, sys
async def main():
    print("ok", flush=True)
    while True:
        await asyncio.sleep(float(sys.argv[1]))
asyncio.run(main())
"""

_INOTIFY_READER: Final = """
import asyncio, ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
path = sys.argv[1]
inotify = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
libc.inotify_add_watch(inotify, os.path.dirname(path).encode(), 0x2)  # IN_MODIFY
fd = os.open(path, os.O_RDONLY)
offset = os.fstat(fd).st_size
def wake():
    global offset
    try:
        while os.read(inotify, 65536):
            pass
    except BlockingIOError:
        pass
    while data := os.pread(fd, 1 << 20, offset):
        offset += len(data)
async def main():
    asyncio.get_running_loop().add_reader(inotify, wake)
    print("ok", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""

_WATCHDOG_READER: Final = """
import asyncio, os, sys
from watchdog.events import FileModifiedEvent, FileSystemEventHandler
from watchdog.observers.inotify import InotifyObserver
path = sys.argv[1]
fd = os.open(path, os.O_RDONLY)
offset = os.fstat(fd).st_size
def wake():
    global offset
    while data := os.pread(fd, 1 << 20, offset):
        offset += len(data)
class Handler(FileSystemEventHandler):
    def __init__(self, loop):
        self.loop = loop
    def on_any_event(self, event):
        self.loop.call_soon_threadsafe(wake)
async def main():
    observer = InotifyObserver()
    handler = Handler(asyncio.get_running_loop())
    observer.schedule(handler, os.path.dirname(path), event_filter=[FileModifiedEvent])
    observer.start()
    print("ok", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""

CpuReader = Callable[[], tuple[float, float]]
"""(% of one core, ms of CPU per wake-up) since the previous call; the first call starts."""


@contextmanager
def _reference(script: str, argument: str) -> Iterator[CpuReader]:
    popen = subprocess.Popen(
        [sys.executable, "-c", script, argument], stdout=subprocess.PIPE, env=proc.python_env()
    )
    last: list[tuple[float, int, int]] = []

    def read() -> tuple[float, float]:
        now, cpu, slices = time.perf_counter(), 0, 0
        for task in Path(f"/proc/{popen.pid}/task").iterdir():  # every thread
            fields = (task / "schedstat").read_text().split()
            cpu, slices = cpu + int(fields[0]), slices + int(fields[2])
        previous = last[-1] if last else (now, cpu, slices)
        last.append((now, cpu, slices))
        elapsed = max(now - previous[0], 1e-9)
        wakes = max(slices - previous[2], 1)
        return 100 * (cpu - previous[1]) / 1e9 / elapsed, (cpu - previous[1]) / 1e6 / wakes

    try:
        if proc.read_line(popen.stdout, proc.READY_TIMEOUT) != b"ok":
            raise proc.WatcherFailed("a reference process did not start")
        yield read
    finally:
        popen.kill()
        popen.wait(timeout=proc.STOP_TIMEOUT)
        if popen.stdout is not None:
            popen.stdout.close()


def idle_loop(period: float) -> AbstractContextManager[CpuReader]:
    """A bare asyncio loop waking every ``period`` seconds and doing nothing."""
    return _reference(_IDLE_LOOP, str(period))


def inotify_reader(log: Path) -> AbstractContextManager[CpuReader]:
    """The floor of an in-loop inotify tail: asyncio + inotify on the log's directory,
    reading to EOF on each event, no watchdog threads, no line assembly, no matching."""
    return _reference(_INOTIFY_READER, str(log))


def watchdog_reader(log: Path) -> AbstractContextManager[CpuReader]:
    """The same through watchdog: its observer threads hand each modification to the
    loop with `call_soon_threadsafe`. What that hand-off costs, beside `inotify_reader`."""
    return _reference(_WATCHDOG_READER, str(log))
