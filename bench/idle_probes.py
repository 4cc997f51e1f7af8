"""Idle footprint with probes: `pod-watcher run` checking an HTTP and a TCP target every
`PERIOD` seconds, no log traffic, against the idle figure without probes.

The targets are a tiny aiohttp server (and a TCP listener) in a process of their own, so
their CPU is not the watcher's. The window is a whole number of probe periods, so it
holds as many checks as the steady state does; the watcher's own counters say how many
checks ran in it and that none failed.
"""

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from bench import probes, proc, scenarios
from bench.profiles import Profile
from bench.report import Result, progress

PERIOD: Final = 5.0
"""periodSeconds of both probes."""
TARGET: Final = 0.1
"""% of one core."""

_TARGETS: Final = """
import asyncio
from aiohttp import web
async def healthz(request):
    return web.Response(text='{"status": "ok"}', content_type="application/json")
async def accept(reader, writer):
    writer.close()
async def main():
    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    listener = await asyncio.start_server(accept, "127.0.0.1", 0)
    print(runner.addresses[0][1], listener.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


@contextmanager
def targets() -> Iterator[tuple[int, int]]:
    """An HTTP server answering 200 on /healthz and a TCP listener: their ports."""
    popen = subprocess.Popen(
        [sys.executable, "-c", _TARGETS], stdout=subprocess.PIPE, env=proc.python_env()
    )
    try:
        line = proc.read_line(popen.stdout, proc.READY_TIMEOUT).split()
        if len(line) != 2:
            raise proc.WatcherFailed("the probe target server did not start")
        yield int(line[0]), int(line[1])
    finally:
        popen.kill()
        popen.wait(timeout=proc.STOP_TIMEOUT)
        if popen.stdout is not None:
            popen.stdout.close()


def probes_env(http_port: int, tcp_port: int) -> dict[str, str]:
    common = {"periodSeconds": PERIOD, "timeoutSeconds": 1, "failureThreshold": 3}
    specs = [
        {"type": "http", "url": f"http://127.0.0.1:{http_port}/healthz", **common},
        {"type": "tcp", "host": "127.0.0.1", "port": tcp_port, **common},
    ]
    return {"WATCHER_PROBES": json.dumps(specs)}


def _counters(port: int) -> tuple[int, int]:
    """The probe monitor's (checks, failed checks) from /metrics."""
    status, body = proc.get(port, "/metrics")
    if status != 200:
        raise proc.WatcherFailed(f"/metrics answered {status}")
    values: dict[str, float] = {}
    for line in body.decode().splitlines():
        name, _, value = line.partition(" ")
        values[name] = float(value) if name.startswith("watcher_probes_") else 0.0
    return int(values["watcher_probes_checks_total"]), int(
        values["watcher_probes_check_failures_total"]
    )


@dataclass
class ProbedIdle:
    footprint: scenarios.Footprint
    checks: int
    """Checks (both probes) within the window."""
    failed: int
    """Failed checks since start: must be 0, the targets are healthy."""


def probed_idle(window: float, settle: float) -> ProbedIdle:
    with (
        tempfile.TemporaryDirectory(prefix="pod-watcher-bench-") as tmp,
        targets() as (http_port, tcp_port),
        probes.idle_loop(scenarios.BASELINE_PERIOD) as baseline,
        proc.running(Path(tmp), probes_env(http_port, tcp_port)) as watcher,
    ):
        watcher.wait_ready()
        watcher.wait_logged("ready", 5.0)
        time.sleep(settle)
        checks_before, _ = _counters(watcher.port)
        rss = proc.rss_kib(watcher.pid)
        cpu_before = proc.cpu_seconds(watcher.pid)
        baseline()
        sample = scenarios.sample_window(watcher.pid, window)
        cpu = proc.cpu_seconds(watcher.pid) - cpu_before
        base_percent, base_per_wake = baseline()
        checks_after, failed = _counters(watcher.port)
        threads = len(proc.tasks(watcher.pid).switches)
        footprint = scenarios.Footprint(
            rss, 100 * cpu / sample.elapsed_s, sample, threads, base_percent, base_per_wake
        )
        return ProbedIdle(footprint, checks_after - checks_before, failed)


def _idle_percent(raw: dict[str, Any]) -> float | None:
    """CPU (schedstat, % of one core) of the idle section without probes, if it ran."""
    idle = raw.get("idle")
    if not isinstance(idle, dict):
        return None
    window = idle["window"]
    return float(100 * window["runtime_ns"] / 1e9 / window["elapsed_s"])


def _versus(run: ProbedIdle, bare: float | None) -> str:
    """How the figure compares with the idle one, and what one check costs on top."""
    if bare is None:
        return ""
    w = run.footprint.window
    text = f"; without probes {bare:.3f} %"
    if run.checks:
        per_check = (w.percent() - bare) / 100 * w.elapsed_s * 1000 / run.checks
        text += f", so {per_check:.2f} ms per check"
    return text


def results(profile: Profile, raw: dict[str, Any]) -> list[Result]:
    """Measure, keep the raw figures in ``raw``, and return the table rows."""
    window = PERIOD * max(1, round(profile.idle_s / PERIOD))
    progress(f"idle with 2 probes every {PERIOD:g} s: {profile.settle_s:g} s + {window:g} s")
    run = probed_idle(window, profile.settle_s)
    raw["idle_probes"] = asdict(run)
    if run.failed:
        raise proc.WatcherFailed(f"with probes: {run.failed} checks of a healthy target failed")
    f, w = run.footprint, run.footprint.window
    return [
        Result(
            "idle+probes",
            f"CPU (schedstat), http + tcp every {PERIOD:g} s",
            w.percent(),
            "% core",
            ("<=", TARGET),
            f"{w.elapsed_s:.1f} s window, {run.checks} checks, 0 failed"
            + _versus(run, _idle_percent(raw)),
        ),
        Result(
            "idle+probes",
            "CPU (utime+stime)",
            f.cpu_percent,
            "% core",
            detail=f"tick = 1/{proc.CLK_TCK} s, too coarse here: the budget is "
            f"{TARGET / 100 * PERIOD * 1000:g} ms per period",
        ),
        Result(
            "idle+probes",
            "context switches",
            w.switches / w.elapsed_s,
            "/s",
            detail=f"all threads ({w.threads_seen} seen), RSS {f.rss_kib / 1024:.1f} MiB, "
            f"event-loop thread {w.percent(w.main_runtime_ns):.3f} %",
        ),
        Result(
            "idle+probes",
            "baseline: bare asyncio loop, 2 s timer",
            f.baseline_percent,
            "% core",
            detail=f"same window; {f.baseline_ms_per_wake:.2f} ms CPU per wake-up here",
        ),
    ]
