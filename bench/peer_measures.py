"""What the peers benchmark measures of each subject: idle, sustained CPU, latency, scan.

The same CRI-framed stream (bench/corpus.py's line mix), the same 50 rules, one subject
at a time on a fresh log in a fresh directory.
"""

import contextlib
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from bench import corpus, peer_configs, peer_procs, probes, proc, replay, scan, scenarios
from bench.peer_procs import Live
from watcher.rules.matcher import RuleMatcher

MB: Final = 1_000_000
DETECT_TIMEOUT: Final = 10.0
LAG_TIMEOUT: Final = 60.0
"""How long a subject may take to report the fatal line written after a sustained run."""

Start = Callable[[Path], AbstractContextManager[Live]]
"""Starts a subject on ``root``/logs/train.log, ready."""


def marker() -> bytes:
    """A fatal line in CRI framing (rule Peer01), stamped now."""
    return corpus.cri_prefix(time.time()) + corpus.FATAL_LINES[0].encode() + b"\n"


def append(log: Path, data: bytes) -> float:
    """One write() of ``data``; `perf_counter` just before it."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        start = time.perf_counter()
        os.write(fd, data)
    finally:
        os.close(fd)
    return start


@contextlib.contextmanager
def _fresh(start: Start) -> Iterator[Live]:
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp, start(Path(tmp)) as live:
        yield live


@dataclass(frozen=True)
class Idle:
    rss_mib: float
    cpu_percent: float
    switches_per_s: float
    threads: int


def idle(start: Start, window: float, settle: float) -> Idle:
    with _fresh(start) as live:
        time.sleep(settle)
        rss = proc.rss_kib(live.pid) / 1024
        w = scenarios.sample_window(live.pid, window)
        threads = len(proc.tasks(live.pid).switches)
    return Idle(rss, w.percent(), w.switches / w.elapsed_s, threads)


@dataclass(frozen=True)
class Sustained:
    cpu_percent: float
    switches_per_s: float
    lag_s: float | None
    """A fatal line written right after the stream, to its report: None if not within
    `LAG_TIMEOUT` (the subject fell behind)."""
    floor_percent: float | None
    """With ``floor``: a bare asyncio loop reading the same file to EOF on inotify, in
    the same window (`probes.inotify_reader`)."""


@contextlib.contextmanager
def _writer(log: Path, rate: int, seconds: float) -> Iterator[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "bench.writer", str(log), str(rate), "100", str(seconds)]
    root = Path(__file__).parent.parent
    writer = subprocess.Popen([*command, "cri"], stdout=subprocess.PIPE, cwd=root)
    try:
        if proc.read_line(writer.stdout, 120.0) != b"go":
            raise proc.WatcherFailed("the writer did not start")
        yield writer
        if not proc.read_line(writer.stdout, seconds + 10.0):
            raise proc.WatcherFailed("the writer did not finish")
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.wait(timeout=proc.STOP_TIMEOUT)
        if writer.stdout is not None:
            writer.stdout.close()


def sustained(start: Start, rate: int, seconds: float, *, floor: bool = False) -> Sustained:
    """CPU over the stream (100 writes/s), then how late the next fatal line is seen."""
    with _fresh(start) as live, contextlib.ExitStack() as stack:
        bare = stack.enter_context(probes.inotify_reader(live.log)) if floor else None
        time.sleep(0.5)
        with _writer(live.log, rate, seconds):
            if bare is not None:
                bare()
            w = scenarios.sample_window(live.pid, seconds + 0.3)
            floor_percent = None if bare is None else bare()[0]
        written_at = append(live.log, marker())
        seen = live.wait_detection(LAG_TIMEOUT)
    lag = None if seen is None else seen - written_at
    return Sustained(w.percent(), w.switches / w.elapsed_s, lag, floor_percent)


def latency(start: Start, count: int) -> list[float]:
    """Seconds from one write() of a fatal line to its report, ``count`` times.

    Writes come 0.3-0.8 s apart, at random phases of any polling the subject does.
    """
    rng = random.Random(count)
    out: list[float] = []
    while len(out) < count:
        with _fresh(start) as live:
            while live.detections_left > 0 and len(out) < count:
                time.sleep(rng.uniform(0.3, 0.8))
                written_at = append(live.log, marker())
                seen = live.wait_detection(DETECT_TIMEOUT)
                if seen is None:
                    raise proc.WatcherFailed(f"{live.name}: no report {DETECT_TIMEOUT}s after")
                out.append(seen - written_at)
    return out


@dataclass(frozen=True)
class ScanCorpus:
    path: Path
    size: int
    lines: int
    """Lines that match at least one rule (grep -c): Fluent Bit prints each once."""
    hits: int
    """(line, rule) matches: node-problem-detector reports each."""
    grep_s: float


def scan_corpus(workdir: Path, size: int) -> ScanCorpus:
    """The training corpus in CRI framing, ending with one more fatal line, so the
    last report of a subject that reads it from its start marks the end of its scan."""
    plain, framed = workdir / "plain.log", workdir / "logs" / "train.log"
    framed.parent.mkdir()
    corpus.training_corpus(plain, size)
    with plain.open("ab") as out:
        out.write(corpus.FATAL_LINES[0].encode() + b"\n")
    corpus.cri_framed(plain, framed, time.time())
    plain.unlink()
    lines, grep_s = scan.grep_count(framed, peer_configs.RULES_FILE)
    matcher = RuleMatcher(scan.bench_rules(peer_configs.patterns()))
    hits = 0
    with framed.open("rb") as handle:
        while block := handle.read(1 << 24):
            block += handle.readline()
            hits += sum(1 for _ in matcher.scan(block))
    return ScanCorpus(framed, framed.stat().st_size, lines, hits, grep_s)


def grep_mb_s(data: ScanCorpus) -> float:
    _, took = scan.grep_count(data.path, peer_configs.RULES_FILE)
    return data.size / took / MB


def scan_pod_watcher(data: ScanCorpus) -> float:
    """`pod-watcher replay` over the file, its start-up (on an empty file) subtracted."""
    env = proc.python_env({k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")})
    env.update(peer_configs.pod_watcher_env())
    empty = data.path.with_name("empty.log")
    empty.touch()
    startup = statistics.median(replay.replay(empty, env)[0] for _ in range(3))
    took, findings, _ = replay.replay(data.path, env)
    lines = {int(str(f["line"])) for f in findings}
    if len(lines) != data.lines:
        raise scan.CorrectnessError(f"pod-watcher: {len(lines)} lines matched, grep {data.lines}")
    return data.size / max(took - startup, 1e-3) / MB


def scan_peer(name: str, binary: Path, data: ScanCorpus, expected: int) -> float:
    """A peer started on the whole file, to its ``expected``-th report; its start-up to
    ready on an empty file subtracted."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp,
        peer_procs.peer(name, binary, Path(tmp)) as live,
    ):
        startup = live.ready_at - live.spawned_at
    with peer_procs.peer(name, binary, data.path.parent.parent, scan=True) as live:
        timeout = data.size / MB / 2 + 60  # slower than 2 MB/s: give up
        last = live.detector.wait("hit", expected, timeout)
        if last is None:
            raise live.fail(f"fewer than {expected} reports")
        time.sleep(0.5)  # nothing more may come
        if (got := len(live.detector.times["hit"])) != expected:
            raise live.fail(f"{got} reports, expected {expected}")
    return data.size / max(last - live.spawned_at - startup, 1e-3) / MB


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan
