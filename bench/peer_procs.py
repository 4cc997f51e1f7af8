"""The subjects of the peers benchmark, each started on the same log with the same rules.

Peers are whatever is installed: a binary named by an environment variable, else the
first on PATH. None is built or fetched here.

| peer | variable | on PATH as |
|---|---|---|
| node-problem-detector | `POD_WATCHER_BENCH_NPD` | `node-problem-detector` |
| Fluent Bit | `POD_WATCHER_BENCH_FLUENT_BIT` | `fluent-bit` |

Every subject reports a detection its own way: pod-watcher exits 88, node-problem-detector
logs "New status generated", Fluent Bit prints the matched record on stdout. A
`Detector` thread notes when each such line arrives.
"""

import contextlib
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final, Protocol

from bench import peer_configs, proc

START_TIMEOUT: Final = 20.0


class PeerMissing(LookupError):
    """A variable names a peer binary that is not an executable file."""


@dataclass(frozen=True)
class PeerSpec:
    name: str
    variable: str
    executable: str


PEERS: Final = (
    PeerSpec("node-problem-detector", "POD_WATCHER_BENCH_NPD", "node-problem-detector"),
    PeerSpec("fluent-bit", "POD_WATCHER_BENCH_FLUENT_BIT", "fluent-bit"),
)


def installed() -> dict[str, Path]:
    """The peers found, by name. A variable that names no executable is an error, so a
    typo does not silently measure nothing."""
    found: dict[str, Path] = {}
    for spec in PEERS:
        named = os.environ.get(spec.variable)
        if named:
            path = Path(named)
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise PeerMissing(f"{spec.variable}={named} is not an executable file")
            found[spec.name] = path
        elif on_path := shutil.which(spec.executable):
            found[spec.name] = Path(on_path)
    return found


class Detector:
    """Drains one output stream of a process on a thread; notes when lines matching
    each of ``patterns`` arrive (`time.perf_counter`), and keeps the last lines."""

    def __init__(self, stream: IO[bytes], patterns: dict[str, bytes]) -> None:
        self.times: dict[str, list[float]] = {key: [] for key in patterns}
        self.tail: deque[bytes] = deque(maxlen=20)
        self._patterns = {key: re.compile(p) for key, p in patterns.items()}
        self._stream = stream
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in self._stream:
                now = time.perf_counter()
                with self._changed:
                    self.tail.append(line[:300])
                    for key, pattern in self._patterns.items():
                        if pattern.search(line):
                            self.times[key].append(now)
                    self._changed.notify_all()

    def wait(self, key: str, count: int, timeout: float) -> float | None:
        """When the ``count``-th ``key`` line arrived, or None after ``timeout``."""
        deadline = time.perf_counter() + timeout
        times = self.times[key]
        with self._changed:
            while len(times) < count:
                left = deadline - time.perf_counter()
                if left <= 0 or not self._thread.is_alive():
                    return None
                self._changed.wait(min(left, 0.5))
            return times[count - 1]

    def join(self) -> None:
        self._thread.join(timeout=proc.STOP_TIMEOUT)

    def text(self) -> str:
        return b"".join(self.tail).decode("utf-8", "replace")[-1500:]


class Live(Protocol):
    """A subject running on ``log``, ready."""

    @property
    def name(self) -> str: ...

    @property
    def pid(self) -> int: ...

    @property
    def log(self) -> Path: ...

    @property
    def detections_left(self) -> int:
        """How many more detections it can report (pod-watcher exits on the first)."""

    def wait_detection(self, timeout: float) -> float | None:
        """When the next detection was reported, or None after ``timeout``."""


@dataclass
class PeerLive:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    spawned_at: float
    detector: Detector
    stderr: Detector
    ready_at: float = 0.0
    detections_left: int = 1 << 30
    seen: int = 0

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_detection(self, timeout: float) -> float | None:
        at = self.detector.wait("hit", self.seen + 1, timeout)
        if at is not None:
            self.seen += 1
        return at

    def fail(self, why: str) -> proc.WatcherFailed:
        output = f"{self.stderr.text()}\n{self.detector.text()}"
        return proc.WatcherFailed(f"{self.name}: {why}: {output}")


@dataclass
class WatcherLive:
    watcher: proc.Watcher
    name: str = "pod-watcher"
    detections_left: int = 1
    decided_at: list[float] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.watcher.pid

    @property
    def log(self) -> Path:
        return self.watcher.log

    @property
    def spawned_at(self) -> float:
        return self.watcher.spawned_at

    @property
    def ready_at(self) -> float:
        return self.watcher.ready_at

    def wait_detection(self, timeout: float) -> float | None:
        """pod-watcher's detection is its exit 88, the restart of the Pod."""
        self.detections_left = 0
        try:
            code, ended = self.watcher.wait_exit(timeout)
        except proc.WatcherFailed:
            return None
        if code != 88:
            raise proc.WatcherFailed(f"pod-watcher exited {code}: {self.watcher.stderr_text()}")
        return ended


@contextlib.contextmanager
def pod_watcher(root: Path) -> Iterator[Live]:
    with proc.running(root, peer_configs.pod_watcher_env()) as watcher:
        watcher.wait_ready()
        watcher.wait_logged("ready", 5.0)
        yield WatcherLive(watcher)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _npd(binary: Path, root: Path, log: Path, _: bool) -> tuple[list[str], bytes, bytes, bool]:
    config = root / "npd-monitor.json"
    config.write_text(peer_configs.npd_monitor(log), "utf-8")
    command = [
        str(binary),
        "--enable-k8s-exporter=false",
        "--hostname-override=bench",
        f"--config.system-log-monitor={config}",
        "--port=0",
        f"--prometheus-port={_free_port()}",  # it needs one exporter to run
    ]
    return command, rb"Start watching filelog", rb"New status generated", False


def _fluent_bit(
    binary: Path, root: Path, log: Path, scan: bool
) -> tuple[list[str], bytes, bytes, bool]:
    config = root / "fluent-bit.conf"
    config.write_text(peer_configs.fluent_bit(log, flush=0.1, from_head=scan), "utf-8")
    return [str(binary), "-c", str(config)], rb"inotify_fs_add\(\)", rb'^\{"date"', True


Launch = Callable[[Path, Path, Path, bool], tuple[list[str], bytes, bytes, bool]]
LAUNCHERS: Final[dict[str, Launch]] = {"node-problem-detector": _npd, "fluent-bit": _fluent_bit}


@contextlib.contextmanager
def peer(name: str, binary: Path, root: Path, *, scan: bool = False) -> Iterator[PeerLive]:
    """``name`` on ``root``/logs/train.log (created empty unless it exists), ready; with
    ``scan``, it reads the existing file from its start (and is not waited for)."""
    log = root / "logs" / "train.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.touch()
    command, ready, detection, on_stdout = LAUNCHERS[name](binary, root, log, scan)
    spawned_at = time.perf_counter()
    popen = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert popen.stdout is not None and popen.stderr is not None
    try:
        if on_stdout:
            stderr = Detector(popen.stderr, {"ready": ready})
            detector = Detector(popen.stdout, {"hit": detection})
        else:
            stderr = detector = Detector(popen.stderr, {"ready": ready, "hit": detection})
        live = PeerLive(name, popen, log, spawned_at, detector, stderr)
        if not scan:
            at = stderr.wait("ready", 1, START_TIMEOUT)
            if at is None:
                raise live.fail("not ready")
            live.ready_at = at
        yield live
    finally:
        popen.terminate()
        try:
            popen.wait(timeout=proc.STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait(timeout=proc.STOP_TIMEOUT)
        for stream in (popen.stdout, popen.stderr):
            stream.close()
