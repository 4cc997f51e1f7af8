"""Scan large byte blocks for rule matches, looking for line boundaries only around hits.

This is GNU grep's trick: a literal prefilter (`watcher.rules.prefilter`: the literals
each rule cannot match without, searched all at once) names the candidate lines; only
there do we ask an RE2 Set which rules match the line, and apply their excludes. Where
the prefilter cannot help (no rule has a usable literal, or a block where literals are
everywhere), one automaton (all include patterns joined into a single RE2 alternation)
runs over the whole block instead, and the lines around its hits are checked the same
way. Lines that match nothing are never split, decoded or touched by Python code.
"""

from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import re2

from watcher.rules.prefilter import Prefilter
from watcher.rules.regex import compile_pattern, compile_set
from watcher.rules.rule import Rule

if TYPE_CHECKING:
    from watcher.logs.lines import Block

_UNANCHORED = re2._Anchor.UNANCHORED  # the wrapper's own constant for an unanchored search
_WARM_UP = b"[2026-01-01 00:00:00,000][train][INFO] - step 1/100 | loss 2.0000 | lr 1.0e-04\n"


@dataclass(frozen=True, slots=True)
class LineHit:
    """One rule matching one line."""

    rule: Rule
    line_start: int
    """Offset of the line in the scanned block."""
    line: bytes
    """The line without its newline."""
    match_start: int
    """Offset of the match within ``line``."""


class _CompiledRule:
    __slots__ = ("excludes", "include", "rule")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.include = compile_pattern(rule.effective_pattern)
        self.excludes = [compile_pattern(p, capture=False) for p in rule.effective_excludes]

    def first_match(self, line: bytes, before: int) -> int | None:
        """Start of the first match if it starts before ``before`` and is not excluded."""
        match = self.include.search(line)
        if match is None or match.start() >= before:
            return None
        if any(ex.search(line) is not None for ex in self.excludes):
            return None
        return int(match.start())


class RuleMatcher:
    """All rules compiled once; `scan` finds every (rule, line) match in a block."""

    def __init__(self, rules: Sequence[Rule], *, prefilter: bool | None = None) -> None:
        """``prefilter``: None decides by itself (see `Prefilter.useful`), False never
        uses one (the plain path), True always does (tests compare the two)."""
        from watcher.rules.detectors import DetectorSet

        self.rules = tuple(rules)
        self.detectors = DetectorSet(self.rules)
        self._compiled = [_CompiledRule(rule) for rule in self.rules]
        patterns = [rule.effective_pattern for rule in self.rules]
        self._combined: Any = None
        self._set: Any = None
        self._prefilter: Prefilter | None = None
        if patterns:
            joined = "(?m)" + "|".join(f"(?:{p})" for p in patterns)
            self._combined = compile_pattern(joined, capture=False)._regexp
            self._set = compile_set(patterns)
        if patterns and prefilter is not False:
            found = Prefilter(patterns, always=prefilter is True)
            self._prefilter = found if found.useful else None
        self._warm_up()

    def _warm_up(self) -> None:
        """Build RE2's first DFA states now, not on the first fatal line: the first scan
        of a fresh matcher took 0.6-2.9 ms, later ones 0.3-0.5 ms."""
        if self._set is None:
            return
        for _ in self.scan(_WARM_UP):
            pass
        self._set.Match(_WARM_UP)
        for compiled in self._compiled:
            compiled.first_match(_WARM_UP, len(_WARM_UP))

    def scan(
        self, data: bytes, end: int | None = None, *, report_before: int | None = None
    ) -> Iterator[LineHit]:
        """Yield the plain rules' matches in ``data[:end]``, which must start at a line
        start (`scan_block` adds the detectors').

        With ``report_before``, only matches starting before that offset are reported
        (the rest of a line cut at the length cap is scanned again with the next piece).
        """
        hits = self._scan(data, end, report_before)
        return (hit for hit in hits if hit.rule.detector is None) if self.detectors else hits

    def _scan(self, data: bytes, end: int | None, report_before: int | None) -> Iterator[LineHit]:
        """Every rule's matches, a detector rule's included (its triggers)."""
        if self._combined is None:
            return
        end = len(data) if end is None else end
        limit = end if report_before is None else min(end, report_before)
        if self._prefilter is not None:
            starts = self._prefilter.line_starts(data, end)
            if starts is not None:
                yield from self._candidates(data, end, limit, starts)
                return
        pos = 0
        while pos < limit:
            spans = self._combined.Match(_UNANCHORED, data, pos, end)
            hit_at = spans[0][0]
            if hit_at < 0 or hit_at >= limit:
                return
            line_start = data.rfind(b"\n", pos, hit_at) + 1 or pos
            line_end = data.find(b"\n", hit_at, end)
            line_end = end if line_end < 0 else line_end
            yield from self._verify(data[line_start:line_end], line_start, limit - line_start)
            pos = line_end + 1

    def _candidates(
        self, data: bytes, end: int, limit: int, starts: list[int]
    ) -> Iterator[LineHit]:
        """The full rules on the lines the prefilter names, in order."""
        for line_start in starts:
            if line_start >= limit:
                return
            line_end = data.find(b"\n", line_start, end)
            line_end = end if line_end < 0 else line_end
            yield from self._verify(data[line_start:line_end], line_start, limit - line_start)

    def scan_block(self, block: "Block", stream: Hashable | None = None) -> Iterator[LineHit]:
        """`scan` one block of a stream, with the detectors, which remember what they saw
        of ``stream`` (a file) in earlier blocks; ``None``: the block is all there is."""
        hits = self._scan(block.data, block.end, block.report_before)
        if not self.detectors:
            return hits
        return self.detectors.merged(
            hits, block.data, block.end, continued=block.seen > 0, stream=stream
        )

    def _verify(self, line: bytes, line_start: int, before: int) -> Iterator[LineHit]:
        for index in sorted(self._set.Match(line) or ()):  # rule order decides
            compiled = self._compiled[index]
            match_start = compiled.first_match(line, before)
            if match_start is not None:
                yield LineHit(compiled.rule, line_start, line, match_start)
