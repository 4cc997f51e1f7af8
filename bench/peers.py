"""`python -m bench.peers [--quick] [--runs N] [--json OUT]`: pod-watcher beside its peers.

Runs pod-watcher and each installed peer (bench/peer_procs.py says how they are found:
`POD_WATCHER_BENCH_NPD`, `POD_WATCHER_BENCH_FLUENT_BIT`, else PATH) on the same CRI-framed
stream with the same 50 rules (bench/peer_rules.txt), in one run, repetitions
interleaved, and prints medians with the ratio pod-watcher / peer. With no peer
installed it says so and measures pod-watcher alone. `.ci/run` does not run it.

Measures: idle RSS and CPU; CPU and context switches at 1 and 10 MB/s in 100 writes/s,
and how late a fatal line written right after the stream is reported; write to report
(pod-watcher: to exit 88); the scan of an existing log read from its start, beside
`grep -E -f` with the same patterns. Exits 1 on a wrong count or a subject that fails.
"""

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import peer_measures as m
from bench import peer_procs, proc, report
from bench.peer_procs import Live
from bench.scan import CorrectnessError


@dataclass(frozen=True)
class Plan:
    runs: int
    idle_s: float
    settle_s: float
    sustained_s: float
    latency_n: int
    scan_mb: float


PLANS = {
    "full": Plan(3, 30, 3, 10, 10, 300),
    "quick": Plan(1, 10, 2, 5, 5, 50),
}

Row = tuple[str, str, Callable[[dict[str, Any]], float | None]]


def _live(
    name: str, binary: Path | None
) -> Callable[[Path], contextlib.AbstractContextManager[Live]]:
    if binary is None:
        return peer_procs.pod_watcher

    def start(root: Path) -> contextlib.AbstractContextManager[Live]:
        return peer_procs.peer(name, binary, root)

    return start


def measure(plan: Plan, peers: dict[str, Path], raw: dict[str, Any]) -> None:
    """Every measure of every subject, ``plan.runs`` times, interleaved, into ``raw``."""
    subjects: dict[str, Path | None] = {"pod-watcher": None, **peers}
    for name in subjects:
        raw[name] = {"idle": [], "1 MB/s": [], "10 MB/s": [], "latency_s": [], "scan_mb_s": []}
    raw["grep_mb_s"] = []
    with tempfile.TemporaryDirectory(prefix="bench-peers-scan-") as tmp:
        report.progress(f"peers: scan corpus, {plan.scan_mb:g} MB in CRI framing")
        data = m.scan_corpus(Path(tmp), int(plan.scan_mb * m.MB))
        raw["scan_corpus"] = {"size": data.size, "lines": data.lines, "hits": data.hits}
        for rep in range(1, plan.runs + 1):
            for name, binary in subjects.items():
                report.progress(f"peers: run {rep}/{plan.runs}, {name}")
                _one_run(plan, name, binary, data, raw[name])
            raw["grep_mb_s"].append(m.grep_mb_s(data))


def _one_run(
    plan: Plan, name: str, binary: Path | None, data: m.ScanCorpus, out: dict[str, Any]
) -> None:
    start = _live(name, binary)
    out["idle"].append(asdict(m.idle(start, plan.idle_s, plan.settle_s)))
    for rate in (1, 10):
        run = m.sustained(start, rate * m.MB, plan.sustained_s, floor=binary is None)
        out[f"{rate} MB/s"].append(asdict(run))
    out["latency_s"].extend(m.latency(start, plan.latency_n))
    if binary is None:
        out["scan_mb_s"].append(m.scan_pod_watcher(data))
    else:
        expected = data.lines if name == "fluent-bit" else data.hits
        out["scan_mb_s"].append(m.scan_peer(name, binary, data, expected))


def _med(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r[key] is not None]
    return statistics.median(values) if values else None


ROWS: list[Row] = [
    ("idle RSS", "MiB", lambda r: _med(r["idle"], "rss_mib")),
    ("idle CPU", "% core", lambda r: _med(r["idle"], "cpu_percent")),
    ("CPU at 1 MB/s, 100 writes/s", "% core", lambda r: _med(r["1 MB/s"], "cpu_percent")),
    ("  context switches at 1 MB/s", "/s", lambda r: _med(r["1 MB/s"], "switches_per_s")),
    (
        "  bare asyncio + inotify loop, same file",
        "% core",
        lambda r: _med(r["1 MB/s"], "floor_percent"),
    ),
    ("CPU at 10 MB/s, 100 writes/s", "% core", lambda r: _med(r["10 MB/s"], "cpu_percent")),
    ("  late after 10 MB/s", "s", lambda r: _med(r["10 MB/s"], "lag_s")),
    ("write -> report, median", "ms", lambda r: 1000 * m.median(r["latency_s"])),
    ("write -> report, p90", "ms", lambda r: 1000 * report.percentile(r["latency_s"], 90)),
    ("scan of an existing log", "MB/s", lambda r: m.median(r["scan_mb_s"])),
]


def table(raw: dict[str, Any], names: list[str]) -> str:
    peers = names[1:]
    head = ["measure", "unit", *names, *(f"pod-watcher / {p}" for p in peers)]
    rows = [head]
    for label, unit, pick in ROWS:
        values = [pick(raw[n]) for n in names]
        ours = values[0]
        ratios = [
            "-" if ours is None or v is None or v == 0 else f"{ours / v:.2f}x" for v in values[1:]
        ]
        rows.append([label, unit, *(report.fmt(v) for v in values), *ratios])
    grep = m.median(raw["grep_mb_s"])
    rows.append(["  grep -E -f, same file", "MB/s", report.fmt(grep), *([""] * (len(head) - 3))])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 run, short windows, 50 MB")
    parser.add_argument("--runs", type=int, help="repetitions (default 3, quick 1)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write results as JSON")
    args = parser.parse_args(argv)
    plan = PLANS["quick" if args.quick else "full"]
    if args.runs:
        plan = Plan(args.runs, *list(asdict(plan).values())[1:])
    try:
        peers = peer_procs.installed()
    except peer_procs.PeerMissing as exc:
        print(f"bench.peers: {exc}", file=sys.stderr)
        return 2
    facts = report.machine()
    facts["peers"] = {name: str(path) for name, path in peers.items()}
    report.print_machine(facts)
    if not peers:
        names = ", ".join(f"{s.variable} or {s.executable} on PATH" for s in peer_procs.PEERS)
        print(f"no peer installed ({names}): measuring pod-watcher alone")
    raw: dict[str, Any] = {"plan": asdict(plan)}
    started = time.perf_counter()
    try:
        measure(plan, peers, raw)
    except (proc.WatcherFailed, CorrectnessError) as exc:
        print(f"CORRECTNESS FAILURE: {exc}", file=sys.stderr)
        return 1
    finally:
        proc.kill_leftovers()
    print(f"\n{plan.runs} runs interleaved, medians; {time.perf_counter() - started:.0f} s")
    print(table(raw, ["pod-watcher", *peers]))
    if args.json:
        report.write_json(args.json, facts, [], {"raw": raw})
    return 0


if __name__ == "__main__":
    sys.exit(main())
