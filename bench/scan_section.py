"""The scan section of the benchmark: our read path against `grep -E -f` on generated logs.

Two corpora (a training log and an NCCL INFO flood), the same 50 patterns, a count check
against grep, then the same read path without the literal prefilter, with the built-in
nccl pack, and with no rules at all (the floor of reading and splitting lines).
"""

import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from bench import corpus, report, scan
from bench.report import Result
from watcher.rules.matcher import RuleMatcher
from watcher.rules.packs import load_pack

if TYPE_CHECKING:
    from bench.run import Bench

MB = 1_000_000


def run(bench: "Bench", workdir: Path) -> None:
    """Generate the corpora in ``workdir``, measure, and add results to ``bench``."""
    p = bench.profile
    main, adversarial = workdir / "train.log", workdir / "nccl-info.log"
    start = time.perf_counter()
    corpus.training_corpus(main, int(p.corpus_mb * MB))
    corpus.nccl_info_corpus(adversarial, int(p.adversarial_mb * MB))
    bench.raw["corpus_generation_s"] = time.perf_counter() - start
    patterns = scan.bench_patterns()
    matcher = RuleMatcher(scan.bench_rules(patterns))
    for label, path in (("main", main), ("NCCL INFO only", adversarial)):
        _against_grep(bench, label, path, matcher, patterns)
    _references(bench, main, matcher)


def _against_grep(
    bench: "Bench", label: str, path: Path, matcher: RuleMatcher, patterns: list[str]
) -> None:
    """Our count and speed against grep's on one corpus; a different count is a failure."""
    report.progress(f"scan: {label} corpus, {path.stat().st_size / MB:.1f} MB")
    try:
        t = scan.compare_with_grep(path, matcher, bench.profile.scan_runs)
    except scan.CorrectnessError as exc:
        detail = scan.mismatch_detail(path, patterns)
        bench.failures.append(f"scan {label}: {exc}; {detail}")
        return
    bench.raw[f"scan_{label}"] = asdict(t)
    bench.check("scan", f"{label}: {t.matching_lines} matching lines, as grep -E -f")
    size = f"{t.size / MB:.1f} MB, {len(patterns)} rules, {t.matching_lines} lines match"
    bench.add(
        Result("scan", f"{label}: grep -E -f", t.grep_mb_s, "MB/s", detail=size),
        Result("scan", f"{label}: ours", t.ours_mb_s, "MB/s", detail="count = grep's"),
        Result("scan", f"{label}: ours / grep", t.ratio, "x", (">=", 0.5)),
    )


def _references(bench: "Bench", main: Path, matcher: RuleMatcher) -> None:
    """The same read path without the prefilter, with the nccl pack, and with no rules."""
    runs = bench.profile.scan_runs
    plain = scan.throughput_only(main, RuleMatcher(matcher.rules, prefilter=False), runs)
    pack = load_pack("nccl")
    nccl = scan.throughput_only(main, RuleMatcher(pack), runs)
    floor = scan.throughput_only(main, None, runs)
    bench.add(
        Result(
            "scan",
            "main: ours without the literal prefilter",
            plain.ours_mb_s,
            "MB/s",
            detail=f"one RE2 automaton over each block; {plain.matching_lines} lines match",
        ),
        Result(
            "scan",
            "main: built-in nccl pack",
            nccl.ours_mb_s,
            "MB/s",
            detail=f"{len(pack)} rules, {nccl.matching_lines} lines match",
        ),
        Result(
            "scan",
            "main: read + lines, no rules",
            floor.ours_mb_s,
            "MB/s",
            detail="floor of the read path",
        ),
    )
