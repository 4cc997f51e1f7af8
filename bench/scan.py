"""Scan throughput: our read path (Tail + LineAssembler + RuleMatcher) against GNU grep."""

import os
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from watcher.config.settings import WatcherSettings
from watcher.logs.lines import Block
from watcher.logs.tail import Tail
from watcher.rules.matcher import LineHit, RuleMatcher
from watcher.rules.rule import Rule

RULES_FILE: Final = Path(__file__).with_name("rules.txt")
GREP_TIMEOUT: Final = 300.0
CHUNK: Final = int(WatcherSettings.model_fields["read_chunk_bytes"].default)
MAX_LINE: Final = int(WatcherSettings.model_fields["max_line_bytes"].default)


class CorrectnessError(RuntimeError):
    """Our engine and grep disagree, or the watcher did not do what it must."""


@dataclass(frozen=True)
class Throughput:
    size: int
    ours_s: list[float]
    grep_s: list[float]
    matching_lines: int

    @property
    def ours_mb_s(self) -> float:
        return self.size / statistics.median(self.ours_s) / 1e6

    @property
    def grep_mb_s(self) -> float:
        return self.size / statistics.median(self.grep_s) / 1e6 if self.grep_s else 0.0

    @property
    def ratio(self) -> float:
        return self.ours_mb_s / self.grep_mb_s if self.grep_s else 0.0


def bench_patterns(path: Path = RULES_FILE) -> list[str]:
    lines = path.read_text("utf-8").splitlines()
    if any(not line for line in lines):
        raise ValueError(f"{path}: an empty line would make grep match every line")
    return lines


def bench_rules(patterns: Sequence[str]) -> list[Rule]:
    return [Rule(reason=f"BenchRule{i:02d}", pattern=p) for i, p in enumerate(patterns, 1)]


def grep_count(corpus: Path, rules_file: Path = RULES_FILE) -> tuple[int, float]:
    """`LC_ALL=C grep -E -c -f rules FILE`: matching lines and wall seconds."""
    env = {**os.environ, "LC_ALL": "C"}
    command = ["grep", "-E", "-c", "-f", str(rules_file), str(corpus)]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, timeout=GREP_TIMEOUT, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise CorrectnessError(f"grep failed ({done.returncode}): {done.stderr.decode()}")
    return int(done.stdout), elapsed


def _scan_block(matcher: RuleMatcher, block: Block, lines: set[int]) -> int:
    """What `LogMonitor._scan` does with a block, minus building the findings.

    The corpora have no line near `max_line_bytes`, so no block is a cut piece of a long
    line and the plain ``scan(data, end)`` is exactly what the monitor asks.
    """
    if block.seen or getattr(block, "report_before", None) is not None:
        raise CorrectnessError(f"unexpected cut line at offset {block.base}")
    newlines = block.data.count(b"\n", block.seen, block.end)
    first: dict[str, tuple[LineHit, int]] = {}
    for hit in matcher.scan(block.data, block.end):
        lines.add(block.base + hit.line_start)
        earlier = first.get(hit.rule.reason)
        first[hit.rule.reason] = (earlier[0], earlier[1] + 1) if earlier else (hit, 1)
    return newlines


def our_count(corpus: Path, matcher: RuleMatcher | None) -> tuple[int, float]:
    """Read ``corpus`` the way the monitor does; distinct matching lines and seconds.

    With ``matcher`` None, only read and assemble lines: the floor of the read path.
    """
    lines: set[int] = set()
    start = time.perf_counter()
    tail = Tail.open(str(corpus), from_end=False, resume=None, max_line=MAX_LINE, chunk=CHUNK)
    if tail is None:
        raise FileNotFoundError(corpus)
    try:
        more = True
        while more:
            block, more = tail.read_once()
            if block is None:
                continue
            if matcher is None:
                block.data.count(b"\n", block.seen, block.end)
            else:
                _scan_block(matcher, block, lines)
        final = tail.lines.flush()
        if final is not None and matcher is not None:
            _scan_block(matcher, final, lines)
    finally:
        tail.close()
    return len(lines), time.perf_counter() - start


def compare_with_grep(corpus: Path, matcher: RuleMatcher, runs: int) -> Throughput:
    """Interleaved grep / ours runs; raises `CorrectnessError` if the counts differ."""
    size = corpus.stat().st_size
    our_count(corpus, None)  # page cache warm for both
    ours_s: list[float] = []
    grep_s: list[float] = []
    count = -1
    for _ in range(runs):
        expected, grep_time = grep_count(corpus)
        got, our_time = our_count(corpus, matcher)
        if got != expected:
            raise CorrectnessError(
                f"{corpus.name}: we found {got} matching lines, grep found {expected}"
            )
        count = got
        grep_s.append(grep_time)
        ours_s.append(our_time)
    return Throughput(size, ours_s, grep_s, count)


def throughput_only(corpus: Path, matcher: RuleMatcher | None, runs: int) -> Throughput:
    size = corpus.stat().st_size
    results = [our_count(corpus, matcher) for _ in range(runs)]
    return Throughput(size, [t for _, t in results], [], results[-1][0])


def mismatch_detail(corpus: Path, patterns: Sequence[str]) -> str:
    """Which rules disagree with grep, to say more than "the counts differ"."""
    out: list[str] = []
    for index, pattern in enumerate(patterns, 1):
        single = corpus.with_suffix(".rule")
        single.write_text(pattern + "\n", "utf-8")
        try:
            expected, _ = grep_count(corpus, single)
        finally:
            single.unlink()
        got, _ = our_count(corpus, RuleMatcher(bench_rules([pattern])))
        if got != expected:
            out.append(f"rule {index} {pattern!r}: ours {got}, grep {expected}")
    return "; ".join(out) or "no single rule differs (an interaction of rules?)"
