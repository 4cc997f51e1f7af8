"""Process benchmarks: time to ready, write-to-exit latency, idle footprint, sustained CPU."""

import calendar
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bench import probes, proc
from bench.corpus import FATAL_LINES

FATAL_LINE: Final = FATAL_LINES[0].encode() + b"\n"
"""The NCCL watchdog timeout, which the built-in nccl pack restarts for."""
EXPECTED_EXIT: Final = 88
EXIT_TIMEOUT: Final = 10.0
SETTLE: Final = 0.2
"""Pause after ready before the fatal line, so start-up work (cursor save) is over."""


def _fresh() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="pod-watcher-bench-")


@dataclass
class ReadyRun:
    ready_s: float
    """Spawn to the first 200 from /readyz."""
    port_s: float
    """Spawn to the first log line naming the port (the HTTP server is up)."""
    ready_log_s: float | None
    """Spawn to the `ready` log line (after the start-up cursor save)."""
    stop_code: int | None = None


def time_to_ready(runs: int) -> list[ReadyRun]:
    out = []
    for _ in range(runs):
        with _fresh() as tmp, proc.running(Path(tmp)) as watcher:
            watcher.wait_ready()
            watcher.wait_logged("ready", 5.0)
            ready_log = next(t for t, r in watcher.records if r.get("msg") == "ready")
            run = ReadyRun(
                watcher.ready_at - watcher.spawned_at,
                watcher.port_at - watcher.spawned_at,
                ready_log - watcher.spawned_at,
            )
            proc.stop(watcher)
            run.stop_code = watcher.popen.returncode
            out.append(run)
    return out


@dataclass
class ExitRun:
    latency_s: float
    """One write() of the fatal line to the process being gone (pidfd readable)."""
    detect_s: float | None
    """Write to the decision log line (its timestamp has millisecond resolution)."""
    last_log_to_exit_s: float | None
    """The last log line to the process being gone (last words, teardown, exit)."""


def log_time(record: dict[str, Any]) -> float | None:
    stamp = record.get("ts")
    if not isinstance(stamp, str) or len(stamp) < 24:
        return None
    whole = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
    return whole + int(stamp[20:23]) / 1000


def write_to_exit(runs: int) -> list[ExitRun]:
    out = []
    for _ in range(runs):
        with _fresh() as tmp, proc.running(Path(tmp)) as watcher:
            watcher.wait_ready()
            watcher.wait_logged("ready", 5.0)
            time.sleep(SETTLE)
            fd = os.open(watcher.log, os.O_WRONLY | os.O_APPEND)
            try:
                wall = time.time()
                start = time.perf_counter()
                os.write(fd, FATAL_LINE)
            finally:
                os.close(fd)
            code, ended = watcher.wait_exit(EXIT_TIMEOUT)
            out.append(_exit_run(watcher, code, ended - start, wall))
    return out


def _exit_run(watcher: proc.Watcher, code: int, latency: float, wall: float) -> ExitRun:
    if code != EXPECTED_EXIT:
        raise proc.WatcherFailed(
            f"exit code {code}, expected {EXPECTED_EXIT}: {watcher.stderr_text()}"
        )
    message = watcher.termination_log.read_text("utf-8") if watcher.termination_log.exists() else ""
    if "NcclWatchdogTimeout" not in message:
        raise proc.WatcherFailed(f"termination log not written: {message!r}")
    if watcher._drain is not None:
        watcher._drain.join(timeout=proc.STOP_TIMEOUT)  # read the last log lines
    decision = next((r for _, r in watcher.records if r.get("event") == "decision"), None)
    decided = log_time(decision) if decision else None
    last = log_time(watcher.records[-1][1]) if watcher.records else None
    ended_wall = wall + latency
    return ExitRun(
        latency,
        None if decided is None else decided - wall,
        None if last is None else ended_wall - last,
    )


@dataclass(frozen=True)
class Window:
    """What a process did over a window, summed over its threads."""

    elapsed_s: float
    switches: int
    runtime_ns: int
    main_runtime_ns: int
    """The event-loop thread's share of ``runtime_ns`` (the others are watchdog's and
    short-lived helper threads)."""
    threads_seen: int

    def percent(self, runtime_ns: int | None = None) -> float:
        value = self.runtime_ns if runtime_ns is None else runtime_ns
        return 100 * value / 1e9 / self.elapsed_s


def sample_window(pid: int, window: float, period: float = 0.1) -> Window:
    """Context switches and run time per thread over ``window`` seconds.

    Threads are sampled every ``period`` so short-lived ones (each cursor save runs on
    its own thread) are counted if they live that long.
    """
    first = proc.tasks(pid)
    switches: dict[int, tuple[int, int]] = {t: (v, v) for t, v in first.switches.items()}
    runtime: dict[int, tuple[int, int]] = {t: (v, v) for t, v in first.runtime_ns.items()}
    start = time.perf_counter()
    while (now := time.perf_counter()) - start < window:
        time.sleep(min(period, window - (now - start)))
        sample = proc.tasks(pid)
        for table, values in ((switches, sample.switches), (runtime, sample.runtime_ns)):
            for tid, value in values.items():
                table[tid] = (table.get(tid, (0, 0))[0], value)
    main = runtime.get(pid, (0, 0))
    return Window(
        time.perf_counter() - start,
        sum(b - a for a, b in switches.values()),
        sum(b - a for a, b in runtime.values()),
        main[1] - main[0],
        len(switches),
    )


@dataclass
class Footprint:
    rss_kib: int
    cpu_percent: float
    """utime + stime over the window, % of one core (tick resolution)."""
    window: Window
    threads: int
    baseline_percent: float
    """A bare asyncio loop waking every `BASELINE_PERIOD` s, same window: % of one core."""
    baseline_ms_per_wake: float


BASELINE_PERIOD: Final = 10.0
"""The watcher's default safety-net tick (`WATCHER_POLL_INTERVAL`), its only idle wake-up."""


def idle_footprint(
    window: float, settle: float, extra_env: dict[str, str] | None = None
) -> Footprint:
    with (
        _fresh() as tmp,
        probes.idle_loop(BASELINE_PERIOD) as baseline,
        proc.running(Path(tmp), extra_env) as watcher,
    ):
        watcher.wait_ready()
        watcher.wait_logged("ready", 5.0)
        time.sleep(settle)
        rss = proc.rss_kib(watcher.pid)
        cpu_before = proc.cpu_seconds(watcher.pid)
        baseline()
        sample = sample_window(watcher.pid, window)
        cpu = proc.cpu_seconds(watcher.pid) - cpu_before
        base_percent, base_per_wake = baseline()
        threads = len(proc.tasks(watcher.pid).switches)
        return Footprint(
            rss, 100 * cpu / sample.elapsed_s, sample, threads, base_percent, base_per_wake
        )


@dataclass
class Sustained:
    cpu_percent: float
    window: Window
    floor_percent: float
    """`probes.inotify_reader` on the same file in the same window: % of one core."""
    watchdog_percent: float
    """`probes.watchdog_reader`, the same through watchdog's threads, same window."""
    written: int
    scanned: int
    rss_kib: int
    notes: list[str] = field(default_factory=list)

    @property
    def floor_ratio(self) -> float:
        return self.cpu_percent / self.floor_percent if self.floor_percent else math.nan


def sustained(rate: int, writes_per_s: int, duration: float) -> Sustained:
    """The watcher's CPU while a writer process appends ``rate`` B/s of benign log."""
    with _fresh() as tmp, proc.running(Path(tmp)) as watcher, ExitStack() as stack:
        watcher.wait_ready()
        watcher.wait_logged("ready", 5.0)
        floor = stack.enter_context(probes.inotify_reader(watcher.log))
        through_watchdog = stack.enter_context(probes.watchdog_reader(watcher.log))
        time.sleep(0.5)
        command = [sys.executable, "-m", "bench.writer", str(watcher.log)]
        command += [str(rate), str(writes_per_s), str(duration)]
        writer = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=Path(__file__).parent.parent)
        try:
            if proc.read_line(writer.stdout, 60.0) != b"go":  # payload ready; timing starts
                raise proc.WatcherFailed("the writer did not start")
            cpu_before = proc.cpu_seconds(watcher.pid)
            floor()
            through_watchdog()
            sample = sample_window(watcher.pid, duration + 0.3)
            cpu = proc.cpu_seconds(watcher.pid) - cpu_before
            floor_percent, _ = floor()
            watchdog_percent, _ = through_watchdog()
            written = int(proc.read_line(writer.stdout, duration + 10.0) or b"0")
            writer.wait(timeout=proc.STOP_TIMEOUT)
        finally:
            if writer.poll() is None:
                writer.kill()
                writer.wait(timeout=proc.STOP_TIMEOUT)
            if writer.stdout is not None:
                writer.stdout.close()
        scanned = _caught_up(watcher.port, written)
        result = Sustained(
            100 * cpu / sample.elapsed_s,
            sample,
            floor_percent,
            watchdog_percent,
            written,
            scanned,
            proc.rss_kib(watcher.pid),
        )
        if scanned != written:
            result.notes.append(f"scanned {scanned} B of {written} B written")
        if watcher.popen.poll() is not None:
            result.notes.append(f"the watcher exited {watcher.popen.returncode} under load")
        return result


def _caught_up(port: int, written: int, timeout: float = 5.0) -> int:
    """Bytes the watcher scanned, once it has all of ``written`` or ``timeout`` passed
    (a loaded machine may leave the last writes unread when the window closes)."""
    deadline = time.perf_counter() + timeout
    while (scanned := _bytes_scanned(port)) != written and time.perf_counter() < deadline:
        time.sleep(0.05)
    return scanned


def _bytes_scanned(port: int) -> int:
    status, body = proc.get(port, "/status")
    if status != 200:
        return -1
    document: Any = json.loads(body)
    return int(document["monitors"]["log"]["bytes_scanned"])
