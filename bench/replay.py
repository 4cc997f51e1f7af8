"""`python -m bench.replay [--size-mb N] [--runs N] [--smoke] [--against DIR]`: offline replay
against grep.

Runs `pod-watcher replay --format json` (the built-in packs, as shipped) over a seeded
training log with planted fatal lines and over an all-`NCCL INFO` log, and `grep -E -c
-f bench/rules.txt` (50 patterns) over the same files, in the same run. Reports
throughput with the replay's start-up (measured on an empty file) subtracted and the file
read `REPEAT` times in one replay process, the ratio to grep, and the replay's peak
memory. Fails (exit 1) unless the replay finds exactly the planted fatal lines, and
nothing fatal in the NCCL INFO log.

`--against DIR` also replays, in each run beside the others, with the watcher of DIR (a
checkout of an earlier commit, e.g. `git worktree add /tmp/before <commit>`), so that a
change's effect on the ratio to grep is measured in one run, not across days.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

from bench import corpus, scan

MB = 1_000_000


def planted_lines(path: Path) -> set[int]:
    """Line numbers (1-based) of the planted fatal lines, found by exact text."""
    fatal = {line.encode() for line in corpus.FATAL_LINES}
    with path.open("rb") as handle:
        return {n for n, line in enumerate(handle, 1) if line.rstrip(b"\n") in fatal}


def replay(
    path: Path, env: dict[str, str] | None = None, tree: Path | None = None, repeat: int = 1
) -> tuple[float, list[dict[str, object]], int]:
    """Wall seconds, the JSON findings, and the child's peak RSS in KiB; ``env`` is the
    child's whole environment (default: ours); ``tree`` the checkout whose watcher runs
    (default: the installed one); ``repeat``: the file is named that many times, so that
    one start-up is spread over that many passes."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "replay", "--format", "json", *[str(path)] * repeat],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
        env=env if tree is None else {**(env or os.environ), "PYTHONPATH": str(tree)},
        cwd=tree,  # `python -m` puts the working directory first on sys.path
    )
    took = time.perf_counter() - started
    if result.returncode not in (0, 1):
        raise scan.CorrectnessError(f"replay exited {result.returncode}: {result.stderr[-500:]}")
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return took, [json.loads(line) for line in result.stdout.splitlines()], peak


def fatal_lines(findings: list[dict[str, object]]) -> set[int]:
    return {int(str(f["line"])) for f in findings if f["severity"] == "fatal"}


REPEAT: Final = 3
"""Passes over the file in one replay process (one in a smoke run): its start-up, 0.4-0.6 s
on the 2-core VM and swinging by more than that under load, is then a third as large a
share of what is measured."""

UNMEASURABLE: Final = 0.25
"""Below this share of a run's wall time, what is left once start-up is subtracted is
noise (a loaded machine moves start-up by more): no figure then."""


def measure(
    path: Path,
    runs: int,
    empty: Path,
    expected: set[int],
    *,
    against: Path | None = None,
    repeat: int = REPEAT,
) -> dict[str, float | None]:
    """Replay and grep ``runs`` times, interleaved; each replay's start-up is measured on
    ``empty`` right before it and subtracted. With ``against``, that tree's replay runs in
    each round too (its findings are not judged: an older rule set may differ)."""
    size = path.stat().st_size
    ours: list[float] = []
    theirs: list[float] = []
    greps: list[float] = []
    peak = 0
    for _ in range(runs):
        findings, peak = _timed(path, empty, ours, repeat=repeat)
        found = fatal_lines(findings)
        if found != expected:
            missing, extra = sorted(expected - found), sorted(found - expected)
            raise scan.CorrectnessError(f"{path.name}: missed lines {missing}, extra {extra}")
        if against is not None:
            _timed(path, empty, theirs, against, repeat)
        greps.append(scan.grep_count(path)[1])
    grep_mb_s = size / statistics.median(greps) / MB
    result: dict[str, float | None] = {
        "size_mb": size / MB,
        "grep_mb_s": grep_mb_s,
        "fatal_lines": len(expected),
        "peak_rss_mib": peak / 1024,
    }
    result.update(_speed("replay", size * repeat, ours, grep_mb_s))
    if against is not None:
        result.update(_speed("against", size * repeat, theirs, grep_mb_s))
    return result


def _timed(
    path: Path, empty: Path, into: list[float], tree: Path | None = None, repeat: int = 1
) -> tuple[list[dict[str, object]], int]:
    """One replay of ``path`` by ``tree``'s watcher, its start-up (on ``empty``, just
    before) subtracted, kept in ``into`` when what is left is measurable."""
    startup = replay(empty, tree=tree)[0]
    took, findings, peak = replay(path, tree=tree, repeat=repeat)
    if took - startup > UNMEASURABLE * took:
        into.append(took - startup)
    return findings, peak


def _speed(name: str, size: int, seconds: list[float], grep_mb_s: float) -> dict[str, float | None]:
    mb_s = size / statistics.median(seconds) / MB if seconds else None
    ratio = None if mb_s is None else mb_s / grep_mb_s
    return {f"{name}_mb_s": mb_s, "ratio" if name == "replay" else f"{name}_ratio": ratio}


def run(
    size_mb: float, runs: int, workdir: Path, against: Path | None = None, repeat: int = REPEAT
) -> dict[str, object]:
    empty = workdir / "empty.log"
    empty.touch()
    startup = statistics.median(replay(empty)[0] for _ in range(3))
    main, info = workdir / "train.log", workdir / "nccl-info.log"
    corpus.training_corpus(main, int(size_mb * MB))
    corpus.nccl_info_corpus(info, int(size_mb * MB / 2))
    expected = planted_lines(main)
    return {
        "startup_s": startup,
        "training log": measure(main, runs, empty, expected, against=against, repeat=repeat),
        "NCCL INFO only": measure(info, runs, empty, set(), against=against, repeat=repeat),
        "against": None if against is None else str(against),
        "passes": repeat,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="2 MB, one run (for CI)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--against", type=Path, help="also replay with this tree's watcher")
    args = parser.parse_args()
    if args.against is not None:
        args.against = args.against.resolve()
    if args.against is not None and not (args.against / "watcher" / "__main__.py").is_file():
        parser.error(f"--against {args.against}: no watcher/__main__.py there")
    size, runs = (2.0, 1) if args.smoke else (args.size_mb, args.runs)
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        try:
            results = run(size, runs, Path(tmp), args.against, 1 if args.smoke else REPEAT)
        except scan.CorrectnessError as exc:
            print(f"CORRECTNESS FAILURE: {exc}", file=sys.stderr)
            sys.exit(1)
    if args.smoke:
        print(smoke_summary(results))
    else:
        print(measured_summary(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), "utf-8")


def smoke_summary(results: dict[str, object]) -> str:
    """Only what a 2 MB run can tell: the findings are right. Its throughput would be
    start-up noise (a run this short takes about as long as the empty-file start-up)."""
    lines = []
    for label in ("training log", "NCCL INFO only"):
        r = results[label]
        assert isinstance(r, dict)
        found = (
            f"exactly the {r['fatal_lines']} planted fatal lines"
            if r["fatal_lines"]
            else "nothing fatal"
        )
        lines.append(f"ok  replay {label}, {r['size_mb']:.1f} MB: {found}")
    lines.append("smoke run: too small to measure, no throughput, no target judged")
    return "\n".join(lines)


def measured_summary(results: dict[str, object]) -> str:
    lines = [
        f"replay start-up (empty file): {results['startup_s']:.3f} s; each run's, measured "
        "right before it, is subtracted"
    ]
    for label in ("training log", "NCCL INFO only"):
        r = results[label]
        assert isinstance(r, dict)
        if r["ratio"] is None:
            speed = "replay: start-up is most of each run here, no figure"
        else:
            verdict = "PASS" if r["ratio"] >= 1.0 else "FAIL"
            speed = (
                f"replay {r['replay_mb_s']:6.0f} MB/s  grep -E -f (50) {r['grep_mb_s']:6.0f} "
                f"MB/s  ratio {r['ratio']:.2f}x (>= 1.0 {verdict})"
            )
        lines.append(
            f"{label:15s} {r['size_mb']:6.1f} MB  {speed}  fatal lines {r['fatal_lines']} "
            f"(all found, none extra)  peak RSS {r['peak_rss_mib']:.0f} MiB"
        )
        if results.get("against"):
            theirs = r.get("against_ratio")
            figure = (
                "no figure"
                if theirs is None
                else (f"{r['against_mb_s']:6.0f} MB/s  ratio {theirs:.2f}x")
            )
            lines.append(f"{'':15s} against {results['against']}: {figure}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
