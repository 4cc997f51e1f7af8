"""Sets of strings for the literal analysis of `watcher.rules.literals`.

For each node of a parsed pattern: the strings it matches exactly (if few), the strings
one of which every match contains, and the strings every match starts with; and how
concatenation, alternation and repetition combine them. After the "exact / required /
prefix" analysis of Russ Cox's trigram-index article.
"""

import functools
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

MAX_SET: Final = 16
"""Largest exact or required set kept; beyond it, a node is "unknown"."""
SELECTIVE: Final = 8
"""A literal this long is rare enough in a log; past it, fewer literals matter more."""
MAX_LITERAL: Final = 128
"""Longest literal kept (a longer exact string is cut to a required piece)."""


@dataclass(frozen=True, slots=True)
class Info:
    exact: frozenset[bytes] | None
    """The node matches exactly one of these strings (None: unknown or too many)."""
    required: frozenset[bytes] | None
    """Every match contains one of these (None: no requirement known)."""
    prefix: frozenset[bytes] | None = None
    """Every match starts with one of these; b"" among them: it may be empty."""

    @property
    def starts(self) -> frozenset[bytes] | None:
        return self.exact if self.exact is not None else self.prefix

    def best(self) -> frozenset[bytes] | None:
        if self.exact is not None and b"" not in self.exact:
            return _better(self.exact, self.required)
        return self.required


ANY: Final = Info(None, None)
EMPTY: Final = Info(frozenset({b""}), None)
COMMON: Final = (
    "loss", "step", "epoch", "info", "error", "warning", "debug", "rank", "train",
    "eval", "time", "grad", "norm", "tokens", "samples", "iteration", "batch", "memory",
    "nccl info", "cuda", "gpu", "node", "data", "model", "throughput",
)  # fmt: skip
"""Words on most lines of a training log: a literal found inside one of them would make
most lines candidates, so it counts as no literal at all."""


@functools.lru_cache(maxsize=4096)
def strength(literal: bytes) -> int:
    """Its length, or 0 for a literal found inside a common word."""
    folded = literal.lower().decode("latin-1")
    return 0 if any(folded in word for word in COMMON) else len(literal)


def _score(literals: frozenset[bytes] | None) -> tuple[int, int, int]:
    """Longer shortest literal first up to `SELECTIVE` bytes, then fewer literals (the
    automaton holds 64 at full speed), then longer."""
    if not literals or b"" in literals:
        return (-1, 0, 0)
    shortest = min(map(strength, literals))
    return (min(shortest, SELECTIVE), -len(literals), shortest)


def _better(a: frozenset[bytes] | None, b: frozenset[bytes] | None) -> frozenset[bytes] | None:
    return a if _score(a) >= _score(b) else b


def _cap(literals: Iterable[bytes]) -> frozenset[bytes] | None:
    out = frozenset(literals)
    return out if len(out) <= MAX_SET else None


def _cap_required(literals: Iterable[bytes]) -> frozenset[bytes] | None:
    """A required set without the literals that contain another one of it (where the
    longer occurs, the shorter does), capped."""
    kept: list[bytes] = []
    for literal in sorted(set(literals), key=len):
        if not any(short in literal for short in kept):
            kept.append(literal)
    return _cap(kept)


def _starts(parts: list[Info]) -> frozenset[bytes] | None:
    """What every match of the concatenation of ``parts`` starts with."""
    done: set[bytes] = set()
    live: frozenset[bytes] | None = frozenset({b""})
    for part in parts:
        part_starts = part.starts
        if part_starts is None or live is None:
            break
        if part.exact is None:  # its strings end the prefix; only its empty match goes on
            done.update(a + b for a in live for b in part_starts if b)
            if b"" not in part_starts:
                live = None
            continue
        live = _product(live, part_starts)
    if live is not None:
        done.update(live)
    return _cap(done) if done else None


def concat(parts: list[Info]) -> Info:
    """Runs of exact children multiply out into required strings, extended by what the
    rest must start with; any child's own requirement is one too; the best of these
    is the concatenation's."""
    parts = _joined(parts)
    best: frozenset[bytes] | None = None
    run: frozenset[bytes] | None = frozenset({b""})
    whole: frozenset[bytes] | None = frozenset({b""})
    for index, part in enumerate(parts):
        best = _better(best, part.required)
        if part.exact is None:
            best = _better(best, _trim(run))
            rest = _starts(parts[index:])
            if run is not None and rest is not None:
                best = _better(best, _trim(_product(run, rest)))
            run = frozenset({b""})
            whole = None
            continue
        best = _better(best, _better(_trim(run), _trim(part.exact)))  # shorter runs too
        joined = _product(run, part.exact) if run is not None else None
        if joined is None:  # too many: keep what the run had, start again here
            best = _better(best, _trim(run))
            joined = part.exact
        run = joined
        whole = _product(whole, part.exact) if whole is not None else None
    best = _better(best, _trim(run))
    exact = whole if whole is not None and all(len(s) <= MAX_LITERAL for s in whole) else None
    return Info(exact, best, None if exact is not None else _starts(parts))


def _joined(parts: list[Info]) -> list[Info]:
    """Neighbouring single strings (plain characters) as one part: the same language,
    far fewer steps."""
    out: list[Info] = []
    pending: list[bytes] = []
    for part in parts:
        if part.exact is not None and len(part.exact) == 1 and part.required is None:
            pending.append(next(iter(part.exact)))
            continue
        if pending:
            out.append(Info(frozenset({b"".join(pending)}), None))
            pending = []
        out.append(part)
    if pending:
        out.append(Info(frozenset({b"".join(pending)}), None))
    return out


def _product(left: frozenset[bytes] | None, right: frozenset[bytes]) -> frozenset[bytes] | None:
    if left is None or len(left) * len(right) > MAX_SET:
        return None
    return frozenset(a + b for a, b in itertools.product(left, right))


def _trim(literals: frozenset[bytes] | None) -> frozenset[bytes] | None:
    """A required set from exact strings: drop it if it has the empty string; cut each
    string to its first `MAX_LITERAL` bytes (still contained in every match)."""
    if literals is None or b"" in literals:
        return None
    return _cap_required(s[:MAX_LITERAL] for s in literals)


def alternate(branches: list[Info]) -> Info:
    exact: frozenset[bytes] | None = None
    if all(b.exact is not None for b in branches):
        exact = _cap(s for b in branches for s in b.exact or ())
    required: frozenset[bytes] | None = None
    choices = [b.best() for b in branches]
    if all(c is not None and b"" not in c for c in choices):
        required = _cap_required(s for c in choices for s in c or ())
    prefix: frozenset[bytes] | None = None
    if all(b.starts is not None for b in branches):
        prefix = _cap(s for b in branches for s in b.starts or ())
    return Info(exact, required, prefix)


def repeat(item: Info, low: int, high: int | None) -> Info:
    if high == 0:
        return EMPTY
    if low == 0:
        if high == 1 and item.exact is not None:
            return Info(_cap({b"", *item.exact}), None)
        item_starts = item.starts
        return Info(None, None, None if item_starts is None else _cap({b"", *item_starts}))
    if low == high and item.exact is not None:
        exact: frozenset[bytes] | None = frozenset({b""})
        for _ in range(low):
            exact = _product(exact, item.exact)
            if exact is None:
                break
        if exact is not None:
            return Info(exact, None)
    return Info(None, item.best(), item.starts)
