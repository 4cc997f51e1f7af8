"""Run the real `pod-watcher run` process, observe it through /proc, and always clean up."""

import atexit
import contextlib
import http.client
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

READY_TIMEOUT: Final = 20.0
POLL_INTERVAL: Final = 0.005
"""How often /readyz is asked while starting (each request costs the watcher CPU)."""
STOP_TIMEOUT: Final = 3.0
CLK_TCK: Final = os.sysconf("SC_CLK_TCK")

_live: set[subprocess.Popen[bytes]] = set()
bytecode_dir: Path | None = None
"""If set, child Pythons cache bytecode here (PYTHONPYCACHEPREFIX), so starts after the
first are warm, as in an image built with compiled bytecode, without writing to the tree."""


def python_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child Python: bytecode cached in `bytecode_dir`."""
    env = dict(os.environ if base is None else base)
    if bytecode_dir is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(bytecode_dir)
    return env


def kill_leftovers() -> None:
    for popen in list(_live):
        with contextlib.suppress(OSError):
            popen.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=STOP_TIMEOUT)


atexit.register(kill_leftovers)


class WatcherFailed(RuntimeError):
    """The watcher did not start, or did not do what it must."""


def command() -> list[str]:
    script = Path(sys.executable).with_name("pod-watcher")
    return [str(script), "run"] if script.exists() else [sys.executable, "-m", "watcher", "run"]


@dataclass
class Watcher:
    popen: subprocess.Popen[bytes]
    root: Path
    log: Path
    termination_log: Path
    spawned_at: float
    """`time.perf_counter()` just before the spawn."""
    port: int = 0
    port_at: float = 0.0
    ready_at: float = 0.0
    """First 200 from /readyz."""
    records: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    """(perf_counter when read, JSON log record) for each stdout line."""
    _buffer: bytes = b""
    _drain: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def logged(self, msg: str) -> dict[str, Any] | None:
        return next((r for _, r in self.records if r.get("msg") == msg), None)

    def _take(self, data: bytes) -> None:
        now = time.perf_counter()
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                record = {"msg": "(not json)", "text": line.decode("utf-8", "replace")}
            self.records.append((now, record if isinstance(record, dict) else {}))
            if not self.port and isinstance(record, dict) and "port" in record:
                self.port, self.port_at = int(record["port"]), now

    def _read_available(self, timeout: float) -> bool:
        """Read what stdout has within ``timeout``; False at end of file."""
        stdout = self.popen.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], max(timeout, 0.0))
        if not ready:
            return True
        data = os.read(stdout.fileno(), 65536)
        if data:
            self._take(data)
        return bool(data)

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Block until /readyz says 200; then keep draining stdout on a thread."""
        deadline = time.perf_counter() + timeout
        while not self.ready_at:
            left = deadline - time.perf_counter()
            if left <= 0:
                raise WatcherFailed(f"not ready within {timeout}s: {self.stderr_text()}")
            if not self._read_available(min(left, POLL_INTERVAL) if self.port else left):
                raise WatcherFailed(
                    f"exited {self.popen.wait(STOP_TIMEOUT)} while starting: {self.stderr_text()}"
                )
            if self.port and get(self.port, "/readyz")[0] == 200:
                self.ready_at = time.perf_counter()
        self._drain = threading.Thread(target=self._drain_forever, daemon=True)
        self._drain.start()

    def wait_logged(self, msg: str, timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while self.logged(msg) is None:
            if time.perf_counter() > deadline:
                raise WatcherFailed(f"no {msg!r} log line within {timeout}s")
            time.sleep(0.002)

    def _drain_forever(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            while self._read_available(3600.0):
                pass

    def wait_exit(self, timeout: float) -> tuple[int, float]:
        """Exit code and the `perf_counter` when the process ended; raise on timeout."""
        fd = os.pidfd_open(self.pid)
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            if not poller.poll(timeout * 1000):
                raise WatcherFailed(f"still running {timeout}s after the fatal line")
            ended = time.perf_counter()
        finally:
            os.close(fd)
        code = self.popen.wait(timeout=STOP_TIMEOUT)
        return code, ended

    def stderr_text(self) -> str:
        path = self.root / "stderr"
        text = path.read_text("utf-8", "replace") if path.exists() else ""
        return text[-2000:] or "(no stderr)"


def read_line(stream: IO[bytes] | None, timeout: float) -> bytes:
    """One line from a child's stdout, or b"" if none comes within ``timeout``."""
    assert stream is not None
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline().strip() if ready else b""


def get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    except OSError:
        return 0, b""
    finally:
        connection.close()


def _environment(root: Path, log: Path, termination_log: Path) -> dict[str, str]:
    env = python_env({k: v for k, v in os.environ.items() if not k.upper().startswith("WATCHER_")})
    env.update(
        WATCHER_LOG_PATHS=str(log.parent / "*.log"),
        WATCHER_STATE_DIR=str(root / "state"),
        WATCHER_TERMINATION_LOG=str(termination_log),
        WATCHER_HTTP_HOST="127.0.0.1",
        WATCHER_HTTP_PORT="0",
        WATCHER_LOG_FORMAT="json",
        WATCHER_GPU="off",
        PYTHONUNBUFFERED="1",
    )
    return env


@contextlib.contextmanager
def running(root: Path, extra_env: dict[str, str] | None = None) -> Iterator[Watcher]:
    """A fresh watcher on ``root``/logs/train.log (empty) with its own state dir."""
    (root / "logs").mkdir(parents=True)
    log = root / "logs" / "train.log"
    log.touch()
    termination_log = root / "termination-log"
    env = {**_environment(root, log, termination_log), **(extra_env or {})}
    with (root / "stderr").open("wb") as stderr:
        spawned_at = time.perf_counter()
        popen = subprocess.Popen(command(), env=env, stdout=subprocess.PIPE, stderr=stderr)
    _live.add(popen)
    watcher = Watcher(popen, root, log, termination_log, spawned_at)
    try:
        yield watcher
    finally:
        stop(watcher)


def stop(watcher: Watcher) -> None:
    popen = watcher.popen
    try:
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(timeout=STOP_TIMEOUT)
    finally:
        _live.discard(popen)
        if watcher._drain is not None:
            watcher._drain.join(timeout=STOP_TIMEOUT)
        if popen.stdout is not None:
            popen.stdout.close()


# --- /proc -------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise WatcherFailed(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (dead threads included), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass(frozen=True)
class TaskSample:
    switches: dict[int, int]
    """Voluntary + involuntary context switches per live thread."""
    runtime_ns: dict[int, int]
    """Time on CPU per live thread (schedstat), where the kernel has it."""


def tasks(pid: int) -> TaskSample:
    switches: dict[int, int] = {}
    runtime: dict[int, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        tid = int(task.name)
        with contextlib.suppress(OSError, ValueError, IndexError):
            count = 0
            for line in (task / "status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                    count += int(line.split()[1])
            switches[tid] = count
            runtime[tid] = int((task / "schedstat").read_text().split()[0])
    return TaskSample(switches, runtime)


def delta(before: dict[int, int], after: dict[int, int]) -> int:
    """Growth of per-thread counters; threads born in between count from zero.

    Threads that ended in between are lost: `transient_threads` says how many.
    """
    return sum(value - before.get(tid, 0) for tid, value in after.items())


def transient_threads(before: TaskSample, after: TaskSample) -> int:
    return len(set(before.switches) - set(after.switches))
