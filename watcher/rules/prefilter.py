"""Candidate lines for a set of rules, found by a multi-literal search: grep's trick.

Each rule's required literals are read from its pattern at load (`watcher.rules.literals`).
One Aho-Corasick automaton over all of them (ahocorasick-rs: Rust, with a SIMD packed
searcher for small literal sets) finds where they occur; only the lines around those
places can match a rule that has literals. Rules without a usable literal are searched
by one RE2 alternation of their own, today's path. The caller runs the full rules on
the candidate lines only, so the results are the same as scanning everything.

Measured on the 100 MB training corpus with the 50 bench rules: the automaton 1.6-1.7
GB/s, RE2's alternation of the same literals 0.53 GB/s, pyahocorasick 0.07 GB/s, one
`bytes.count` per literal 0.05 GB/s (GNU grep -E -f: 0.40 GB/s on that machine); the
whole scan 0.85 GB/s with it, 0.41 without. The packed searcher holds 64 literals; past
that (the built-in packs need 137) the automaton is slower than RE2 alone, so those
rules keep the plain path unless merging shared substrings gets them under 64.
"""

from collections.abc import Sequence
from typing import Any, Final

import re2

from watcher.rules.literal_sets import strength
from watcher.rules.literals import Required, required
from watcher.rules.regex import compile_pattern

MIN_LITERAL: Final = 3
"""Shorter required literals would make most lines candidates: such a rule keeps the
plain path."""
PACKED: Final = 64
"""The most literals ahocorasick-rs searches with its SIMD packed searcher (Teddy):
4.1 GB/s at 64 random literals, 0.47 GB/s at 65. Beyond it, literals that share a
substring give way to it."""
SHARED_WIDTHS: Final = (12, 9, 7)
"""Lengths of the shared substrings tried, longest (most selective) first."""
DENSE: Final = 2048
"""Bytes per candidate line below which a block is scanned the plain way instead: when
literals are everywhere (an `NCCL INFO` flood), RE2's automaton rejects near misses
faster than checking each line in Python."""

MAX_BACKOFF: Final = 64
"""After a dense block the next one is scanned the plain way, after two in a row the
next two, and so on up to this many: a flood costs little more than the plain path."""
_UNANCHORED: Final = re2._Anchor.UNANCHORED


def usable(found: Required | None) -> bool:
    return found is not None and min(map(strength, found.literals)) >= MIN_LITERAL


def _minimal(literals: set[bytes]) -> list[bytes]:
    """Drop each literal that contains another: where it occurs, so does the other."""
    ordered = sorted(literals, key=len)
    kept: list[bytes] = []
    for literal in ordered:
        if not any(short in literal for short in kept):
            kept.append(literal)
    return sorted(kept)


def _shared(literals: list[bytes], limit: int) -> list[bytes]:
    """Down to ``limit`` literals where it can, each a substring of those it replaces (so
    each line with one of the old literals has one of the new).

    Greedy: at each width, longest first, the substrings shared by the most literals
    replace them, until few enough are left; substrings of common words are never used.
    """
    current = literals
    for width in SHARED_WIDTHS:  # each pass costs about 2 ms at 130 literals
        if len(current) <= limit:
            break
        groups: dict[bytes, set[int]] = {}
        for index, literal in enumerate(current):
            for at in range(len(literal) - width + 1):
                groups.setdefault(literal[at : at + width], set()).add(index)
        replaced: set[int] = set()
        chosen: set[bytes] = set()
        excess = len(current) - limit
        for gram, members in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            if excess <= 0 or len(members) < 2:
                break
            fresh = members - replaced
            if len(fresh) < 2 or strength(gram) < width:
                continue  # taken already, or a common word: most lines would match
            replaced |= fresh
            chosen.add(gram)
            excess -= len(fresh) - 1
        current = _minimal({lit for i, lit in enumerate(current) if i not in replaced} | chosen)
    return current


class Prefilter:
    """Which lines of a block may match any of ``patterns`` (RE2 syntax, byte mode)."""

    def __init__(self, patterns: Sequence[str], *, always: bool = False) -> None:
        """``always``: use the automaton even past `PACKED` literals (where it is slower
        than RE2 alone), as the equivalence tests do."""
        found = {i: r for i, r in enumerate(map(required, patterns)) if r and usable(r)}
        self.covered = tuple(found)
        """Indexes of the patterns found through their literals."""
        self.folded = any(r.folded for r in found.values())
        literals = {lit for r in found.values() for lit in r.literals}
        if self.folded:
            literals = {lit.lower() for lit in literals}
        self.literals = _minimal(literals)
        if PACKED < len(self.literals) <= 2 * PACKED:
            self.literals = _shared(self.literals, PACKED)
        self._automaton: Any = None
        if self.literals and (always or len(self.literals) <= PACKED):
            import ahocorasick_rs  # 0.75 MiB, for rule sets that use it only

            self._automaton = ahocorasick_rs.BytesAhoCorasick(
                self.literals, matchkind=ahocorasick_rs.MATCHKIND_LEFTMOST_FIRST
            )
        self._skip = 0
        self._backoff = 1
        rest = [p for i, p in enumerate(patterns) if i not in found]
        self._rest: Any = None
        if rest:
            joined = "(?m)" + "|".join(f"(?:{p})" for p in rest)
            self._rest = compile_pattern(joined, capture=False)._regexp

    @property
    def useful(self) -> bool:
        """Whether any pattern is found through literals (else scan the plain way)."""
        return self._automaton is not None

    def line_starts(self, data: bytes, end: int) -> list[int] | None:
        """Sorted starts of the lines of ``data[:end]`` that may match; None when they
        are too many for this to pay (see `DENSE`, `MAX_BACKOFF`): scan it plainly."""
        if self._skip > 0:  # recent blocks were dense: they come in floods
            self._skip -= 1
            return None
        haystack = data[:end].lower() if self.folded else memoryview(data)[:end]
        matches = self._automaton.find_matches_as_indexes(haystack)
        if len(matches) > end // DENSE + 64:  # a short block: checking each line is cheap
            self._skip, self._backoff = self._backoff, min(2 * self._backoff, MAX_BACKOFF)
            return None
        self._backoff = 1
        starts: list[int] = []
        line_end = -1
        for _, at, _ in matches:
            if at < line_end:
                continue  # this line is a candidate already
            starts.append(data.rfind(b"\n", 0, at) + 1)
            line_end = data.find(b"\n", at, end)
            if line_end < 0:
                break
        if self._rest is not None:
            return sorted(set(starts).union(self._rest_starts(data, end)))
        return starts

    def _rest_starts(self, data: bytes, end: int) -> list[int]:
        """Line starts where a pattern without literals matches (RE2, as before)."""
        starts = []
        pos = 0
        while pos < end:
            hit_at = self._rest.Match(_UNANCHORED, data, pos, end)[0][0]
            if hit_at < 0:
                break
            starts.append(data.rfind(b"\n", pos, hit_at) + 1 or pos)
            line_end = data.find(b"\n", hit_at, end)
            if line_end < 0:
                break
            pos = line_end + 1
        return starts
