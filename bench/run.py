"""`python -m bench.run [--quick | --smoke] [--only SECTION] [--json OUT]`: the benchmark.

Measures, in one run on this machine: scan throughput against GNU grep (with a count
check), time to ready, write-to-exit latency, idle footprint (also with two probes) and
CPU at a sustained log rate. Prints a table with targets. Exits 1 only on a correctness
failure (grep and we disagree, wrong exit code, no termination message, a watcher that
does not start or does not stop cleanly, a probe of a healthy target that fails, bytes
written but not scanned).

`--smoke` (CI) runs every section at a size too small to measure anything: it prints
the correctness checks that passed, no figures and no verdicts.
"""

import argparse
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Collection
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

from bench import idle_probes, probes, proc, report, scan_section, scenarios
from bench.profiles import PROFILES, Profile
from bench.report import Result

MB = scan_section.MB
SECTIONS = ("scan", "ready", "exit", "idle", "sustained")


class Bench:
    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.results: list[Result] = []
        self.raw: dict[str, Any] = {"profile": asdict(profile)}
        self.failures: list[str] = []
        self.checks: list[str] = []
        """Correctness checks that passed, one line each: what a smoke run reports."""

    def add(self, *results: Result) -> None:
        self.results.extend(results)

    def check(self, section: str, passed: str) -> None:
        self.checks.append(f"{section}: {passed}")

    def ready(self) -> None:
        report.progress(f"time to ready: 1 cold + {self.profile.ready_runs} runs")
        cold = scenarios.time_to_ready(1)[0]  # fills the empty bytecode cache
        self.raw["ready_cold"] = asdict(cold)
        runs = scenarios.time_to_ready(self.profile.ready_runs)
        self.raw["ready"] = [asdict(r) for r in runs]
        ready = [r.ready_s for r in runs]
        stops = sorted({-999 if r.stop_code is None else r.stop_code for r in runs})
        port = statistics.median(r.port_s for r in runs)
        if stops != [0]:
            raise proc.WatcherFailed(f"exit codes on SIGTERM {stops}, expected [0]")
        self.check("ready", f"{len(runs) + 1} starts answered /readyz; SIGTERM exits 0")
        self.add(
            Result(
                "ready",
                "spawn -> /readyz 200, median",
                statistics.median(ready),
                "s",
                ("<=", 0.5),
                f"n={len(runs)}, min {min(ready):.3f}, max {max(ready):.3f}",
            ),
            Result("ready", "spawn -> HTTP port logged, median", port, "s"),
            Result(
                "ready",
                "spawn -> 'ready' logged, median",
                statistics.median(r.ready_log_s or 0.0 for r in runs),
                "s",
                detail=f"exit code on SIGTERM: {stops}",
            ),
            Result(
                "ready",
                "spawn -> /readyz 200, no bytecode cache",
                cold.ready_s,
                "s",
                detail="first start, compiling every module (one run)",
            ),
        )

    def exit_latency(self) -> None:
        report.progress(f"write-to-exit: {self.profile.exit_runs} runs")
        runs = scenarios.write_to_exit(self.profile.exit_runs)
        self.raw["exit"] = [asdict(r) for r in runs]
        ms = [1000 * r.latency_s for r in runs]
        detect = [1000 * r.detect_s for r in runs if r.detect_s is not None]
        tail = [1000 * r.last_log_to_exit_s for r in runs if r.last_log_to_exit_s is not None]
        self.check("exit", f"{len(runs)} fatal lines: exit 88 with the termination message")
        self.add(
            Result(
                "exit",
                "write -> exit 88, median",
                statistics.median(ms),
                "ms",
                ("<=", 16),
                f"n={len(ms)}, min {min(ms):.1f}, max {max(ms):.1f}; exit 88 + termination log"
                " checked every run",
            ),
            Result("exit", "write -> exit 88, p90", report.percentile(ms, 90), "ms", ("<=", 35)),
        )
        if detect and tail:
            self.add(
                Result(
                    "exit",
                    "  write -> decision logged, median",
                    statistics.median(detect),
                    "ms",
                    detail="log timestamps have 1 ms resolution",
                ),
                Result(
                    "exit",
                    "  last log line -> exited, median",
                    statistics.median(tail),
                    "ms",
                    detail="last words, teardown, interpreter exit",
                ),
            )
        teardown, hard = probes.interpreter_teardown(3 if self.profile.name == "smoke" else 5)
        self.raw["teardown_s"] = {"sys.exit": teardown, "os._exit": hard}
        self.add(
            Result(
                "exit",
                "  interpreter teardown after imports",
                1000 * teardown,
                "ms",
                detail=f"import watcher, then sys.exit(88); with os._exit: {1000 * hard:.1f} ms",
            )
        )

    def idle(self) -> None:
        p = self.profile
        report.progress(f"idle footprint: {p.settle_s:g} s settle + {p.idle_s:g} s window")
        f = scenarios.idle_footprint(p.idle_s, p.settle_s)
        w = f.window
        self.raw["idle"] = asdict(f)
        self.check("idle", f"watcher idle {w.elapsed_s:.0f} s with {f.threads} threads")
        main_share = f"event-loop thread {w.percent(w.main_runtime_ns):.3f} %"
        self.add(
            Result("idle", "RSS", f.rss_kib / 1024, "MiB", ("<=", 40), f"{f.threads} threads"),
            Result(
                "idle",
                "CPU (utime+stime)",
                f.cpu_percent,
                "% core",
                ("<=", 0.1),
                f"{w.elapsed_s:.1f} s window, tick = 1/{proc.CLK_TCK} s",
            ),
            Result("idle", "CPU (schedstat)", w.percent(), "% core", detail=main_share),
            Result(
                "idle",
                "context switches",
                w.switches / w.elapsed_s,
                "/s",
                detail=f"all threads ({w.threads_seen} seen), a wake-up proxy; "
                f"{w.runtime_ns / 1e6 / max(w.switches, 1):.2f} ms CPU each",
            ),
            Result(
                "idle",
                f"baseline: bare asyncio loop, {scenarios.BASELINE_PERIOD:g} s timer",
                f.baseline_percent,
                "% core",
                detail=f"same window; {f.baseline_ms_per_wake:.2f} ms CPU per wake-up here",
            ),
        )
        self.add(*idle_probes.results(p, self.raw))
        self.check("idle+probes", f"{self.raw['idle_probes']['checks']} probe checks, none failed")

    def sustained(self) -> None:
        p = self.profile
        report.progress(
            f"sustained: 1 MB/s at 100 writes/s, {p.sustained_runs} x {p.sustained_s:g} s"
        )
        runs = [scenarios.sustained(MB, 100, p.sustained_s) for _ in range(p.sustained_runs)]
        self.raw["sustained"] = [asdict(s) for s in runs]
        cpu = [s.cpu_percent for s in runs]
        sched = [s.window.percent() for s in runs]
        main = [s.window.percent(s.window.main_runtime_ns) for s in runs]
        notes = "; ".join(n for s in runs for n in s.notes)
        written = sum(s.written for s in runs)
        if notes:
            raise proc.WatcherFailed(notes)
        self.check("sustained", f"all {written:,} B written were scanned")
        self.add(
            Result(
                "sustained",
                "CPU at 1 MB/s, 100 writes/s, median",
                statistics.median(cpu),
                "% core",
                ("<=", 4),
                f"n={len(runs)}, {min(cpu):.2f}-{max(cpu):.2f}; all {written:,} B scanned",
            ),
            Result(
                "sustained",
                "CPU (schedstat), median",
                statistics.median(sched),
                "% core",
                detail=f"event-loop thread {statistics.median(main):.2f} %, the rest watchdog's",
            ),
            Result(
                "sustained",
                "reference: watchdog -> loop, read to EOF",
                statistics.median(s.watchdog_percent for s in runs),
                "% core",
                detail="same file and window; watchdog's threads hand each write to the loop",
            ),
            Result(
                "sustained",
                "floor: asyncio + inotify, read to EOF",
                statistics.median(s.floor_percent for s in runs),
                "% core",
                detail="same file and window; no watchdog, no matching; watcher = "
                f"{statistics.median(s.floor_ratio for s in runs):.1f}x",
            ),
            Result("sustained", "RSS after", runs[-1].rss_kib / 1024, "MiB"),
        )

    def run(self, only: Collection[str] = SECTIONS) -> None:
        if "scan" in only:
            with tempfile.TemporaryDirectory(prefix="pod-watcher-corpus-") as tmp:
                scan_section.run(self, Path(tmp))
        processes = {
            "ready": self.ready,
            "exit": self.exit_latency,
            "idle": self.idle,
            "sustained": self.sustained,
        }
        with tempfile.TemporaryDirectory(prefix="pod-watcher-pyc-") as pyc:
            proc.bytecode_dir = Path(pyc)
            try:
                for name, section in processes.items():
                    if name not in only:
                        continue
                    try:
                        section()
                    except proc.WatcherFailed as exc:
                        self.failures.append(f"{name}: {exc}")
            finally:
                proc.bytecode_dir = None


def _interrupted(signum: int, _: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through every cleanup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="10 MB corpus, shorter windows")
    size.add_argument("--smoke", action="store_true", help="everything tiny, for CI (< 30 s)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write results as JSON")
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        help="run only this section (repeatable); idle includes the probes",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupted)
    profile = PROFILES["smoke" if args.smoke else "quick" if args.quick else "full"]
    facts = report.machine()
    report.print_machine(facts)
    bench = Bench(profile)
    started = time.perf_counter()
    try:
        bench.run(args.only or SECTIONS)
    finally:
        proc.kill_leftovers()
    bench.raw["elapsed_s"] = time.perf_counter() - started
    bench.raw["loadavg_at_end"] = report.loadavg()
    print()
    if profile.judged:
        print(report.table(bench.results))
        missed = [r.name for r in bench.results if r.passed is False]
        print(
            f"\nprofile {profile.name}, {bench.raw['elapsed_s']:.0f} s; targets missed: "
            f"{', '.join(missed) or 'none'}"
        )
    else:
        print(report.checks(profile.name, bench.checks, bench.raw["elapsed_s"]))
    for failure in bench.failures:
        print(f"CORRECTNESS FAILURE: {failure}", file=sys.stderr)
    if args.json:
        extra = {"raw": bench.raw, "failures": bench.failures, "checks": bench.checks}
        report.write_json(args.json, facts, bench.results, extra)
    return 1 if bench.failures else 0


if __name__ == "__main__":
    sys.exit(main())
