"""Idle footprint with probes: `pod-watcher run` checking an HTTP and a TCP target every
`PERIOD` seconds, no log traffic.

The targets are a tiny aiohttp server (and a TCP listener) in a process of their own, so
their CPU is not the watcher's. The window is a whole number of probe periods, so it
holds as many checks as the steady state does; the watcher's own counters say how many
checks ran in it and that none failed.

Two references put the figure in context, both measured in the same run: a bare asyncio
loop waking every `PERIOD` seconds in the same window (the least any asyncio process
that probes at this period costs on this machine), and the CPU of one check run back to
back (what the checks cost where a wake-up is cheap).
"""

import asyncio
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
from watcher.probes.checks import Checker, client_session
from watcher.probes.spec import ProbeSpec

PERIOD: Final = 5.0
"""periodSeconds of both probes."""
TARGET: Final = 0.1
"""The old absolute budget (% of a core), kept for the per-period figure."""
RATIO: Final = 1.5
"""Two probes every period may cost this much of a bare loop waking as often."""
"""% of one core."""
HOT_CHECKS: Final = 200
"""Checks of each probe run back to back for the hot per-check cost."""

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


def probe_specs(http_port: int, tcp_port: int) -> list[dict[str, Any]]:
    common = {"periodSeconds": PERIOD, "timeoutSeconds": 1, "failureThreshold": 3}
    return [
        {"type": "http", "url": f"http://127.0.0.1:{http_port}/healthz", **common},
        {"type": "tcp", "host": "127.0.0.1", "port": tcp_port, **common},
    ]


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
    """Its baseline is a bare asyncio loop waking every `PERIOD` seconds."""
    checks: int
    """Checks (both probes) within the window."""
    failed: int
    """Failed checks since start: must be 0, the targets are healthy."""
    hot_ms: dict[str, float]
    """CPU per check, checks run back to back in this process: by probe type."""


def probed_idle(window: float, settle: float) -> ProbedIdle:
    with (
        tempfile.TemporaryDirectory(prefix="pod-watcher-bench-") as tmp,
        targets() as (http_port, tcp_port),
        probes.idle_loop(PERIOD) as baseline,
    ):
        env = {"WATCHER_PROBES": json.dumps(probe_specs(http_port, tcp_port))}
        with proc.running(Path(tmp), env) as watcher:
            watcher.wait_ready()
            watcher.wait_logged("ready", 5.0)
            _wait_for_the_beat(watcher.port)
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
        hot = hot_check_ms(probe_specs(http_port, tcp_port), HOT_CHECKS)
        return ProbedIdle(footprint, checks_after - checks_before, failed, hot)


def _wait_for_the_beat(port: int) -> None:
    """Until both probes have checked twice: the first check is off the beat and the
    second comes up to 1.5 periods later; from then on the rhythm is steady."""
    deadline = time.monotonic() + 2 * PERIOD + 5
    while _counters(port)[0] < 4:
        if time.monotonic() > deadline:
            raise proc.WatcherFailed("the probes did not reach their second check")
        time.sleep(0.1)


def hot_check_ms(specs: list[dict[str, Any]], rounds: int) -> dict[str, float]:
    """CPU (this process) per check, ``rounds`` checks of each probe back to back."""

    async def measure() -> dict[str, float]:
        out: dict[str, float] = {}
        async with client_session() as session:
            for spec in map(ProbeSpec.model_validate, specs):
                checker = Checker(spec, session)
                for _ in range(10):  # imports, first connections
                    await checker.check()
                start = time.process_time()
                for _ in range(rounds):
                    if not (result := await checker.check()).ok:
                        raise proc.WatcherFailed(f"a hot check failed: {result.detail}")
                out[spec.type] = (time.process_time() - start) * 1000 / rounds
        return out

    return asyncio.run(measure())


def _idle_percent(raw: dict[str, Any]) -> float | None:
    """CPU (schedstat, % of one core) of the idle section without probes, if it ran."""
    idle = raw.get("idle")
    if not isinstance(idle, dict):
        return None
    window = idle["window"]
    return float(100 * window["runtime_ns"] / 1e9 / window["elapsed_s"])


def results(profile: Profile, raw: dict[str, Any]) -> list[Result]:
    """Measure, keep the raw figures in ``raw``, and return the table rows."""
    window = PERIOD * max(1, round(profile.idle_s / PERIOD))
    progress(f"idle with 2 probes every {PERIOD:g} s: {profile.settle_s:g} s + {window:g} s")
    run = probed_idle(window, profile.settle_s)
    raw["idle_probes"] = asdict(run)
    if run.failed:
        raise proc.WatcherFailed(f"with probes: {run.failed} checks of a healthy target failed")
    return _measured(run, _idle_percent(raw)) + _references(run)


def _measured(run: ProbedIdle, bare: float | None) -> list[Result]:
    f, w = run.footprint, run.footprint.window
    without = "" if bare is None else f"; without probes {bare:.3f} %"
    wakes = w.switches / (w.elapsed_s / PERIOD)
    return [
        Result(
            "idle+probes",
            f"CPU (schedstat), http + tcp every {PERIOD:g} s",
            w.percent(),
            "% core",
            detail=f"{w.elapsed_s:.1f} s window, {run.checks} checks, 0 failed{without}",
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
            f"context switches per {PERIOD:g} s period",
            wakes,
            "",
            detail=f"all threads ({w.threads_seen} seen), RSS {f.rss_kib / 1024:.1f} MiB, "
            f"event-loop thread {w.percent(w.main_runtime_ns):.3f} %",
        ),
    ]


def _references(run: ProbedIdle) -> list[Result]:
    f, w = run.footprint, run.footprint.window
    hot = sum(run.hot_ms.values())
    return [
        Result(
            "idle+probes",
            f"baseline: bare asyncio loop, {PERIOD:g} s timer",
            f.baseline_percent,
            "% core",
            detail=f"same window; {f.baseline_ms_per_wake:.2f} ms CPU per wake-up here",
        ),
        Result(
            "idle+probes",
            "watcher / bare loop at the same period",
            w.percent() / f.baseline_percent if f.baseline_percent else None,
            "x",
            ("<=", RATIO),
            "issue 17: the absolute target left with this VM's wake-up cost",
        ),
        Result(
            "idle+probes",
            "one check of each, run hot",
            hot,
            "ms CPU",
            detail=", ".join(f"{k} {v:.2f} ms" for k, v in run.hot_ms.items())
            + f"; {HOT_CHECKS} in a row",
        ),
        Result(
            "idle+probes",
            "  the checks alone, per period",
            100 * hot / 1000 / PERIOD,
            "% core",
            detail="the idle figure where a wake-up costs what a hot loop turn does",
        ),
    ]
