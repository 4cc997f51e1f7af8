"""The literals a rule's pattern cannot match without: read from the pattern at load.

`required(pattern)` returns a set of byte strings such that every match of the pattern
contains at least one of them, or None when it cannot say (then the rule keeps the plain
path). It reads the pattern exactly as RE2 does here (`watcher.rules.regex`): the UTF-8
bytes of the pattern as Latin-1 characters, so each character is one byte. Anything it
does not know (octal or `\\pN` escapes, `\\Q...\\E`, code points above 0xFF) makes it
give up on the whole pattern rather than guess: a wrong literal would lose matches.

Case-insensitive parts give lower-case literals and mark the result `folded`: it must be
searched for in lower-cased text. Folding is ASCII only, so a non-ASCII byte under
`(?i)` counts as an unknown character.

The analysis follows the "exact set / required set" idea of Russ Cox's trigram-index
article (regexp/syntax): for each node the set of strings it matches exactly, if small,
and a set of strings one of which every match contains.
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
_PERL_CLASSES: Final = frozenset("dDsSwW")
_EMPTY_ESCAPES: Final = frozenset("bBAz")
_CONTROL: Final = {"a": "\a", "f": "\f", "t": "\t", "n": "\n", "r": "\r", "v": "\v"}


class Unsupported(ValueError):
    """A construct this reader does not model: no literal for the whole pattern."""


@dataclass(frozen=True, slots=True)
class Required:
    literals: frozenset[bytes]
    """Every match contains one of these (lower-cased where ``folded``)."""
    folded: bool
    """Some literal came from a case-insensitive part: search lower-cased text."""


@dataclass(frozen=True, slots=True)
class _Info:
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


_ANY: Final = _Info(None, None)
_EMPTY: Final = _Info(frozenset({b""}), None)
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


def _starts(parts: list[_Info]) -> frozenset[bytes] | None:
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


def _concat(parts: list[_Info]) -> _Info:
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
    return _Info(exact, best, None if exact is not None else _starts(parts))


def _joined(parts: list[_Info]) -> list[_Info]:
    """Neighbouring single strings (plain characters) as one part: the same language,
    far fewer steps."""
    out: list[_Info] = []
    pending: list[bytes] = []
    for part in parts:
        if part.exact is not None and len(part.exact) == 1 and part.required is None:
            pending.append(next(iter(part.exact)))
            continue
        if pending:
            out.append(_Info(frozenset({b"".join(pending)}), None))
            pending = []
        out.append(part)
    if pending:
        out.append(_Info(frozenset({b"".join(pending)}), None))
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


def _alternate(branches: list[_Info]) -> _Info:
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
    return _Info(exact, required, prefix)


def _repeat(item: _Info, low: int, high: int | None) -> _Info:
    if high == 0:
        return _EMPTY
    if low == 0:
        if high == 1 and item.exact is not None:
            return _Info(_cap({b"", *item.exact}), None)
        item_starts = item.starts
        return _Info(None, None, None if item_starts is None else _cap({b"", *item_starts}))
    if low == high and item.exact is not None:
        exact: frozenset[bytes] | None = frozenset({b""})
        for _ in range(low):
            exact = _product(exact, item.exact)
            if exact is None:
                break
        if exact is not None:
            return _Info(exact, None)
    return _Info(None, item.best(), item.starts)


class _Parser:
    """A recursive-descent reader of RE2 syntax over one byte per character.

    ``fold`` is the current case-insensitivity: `(?i)` sets it for the rest of the
    enclosing group (alternatives included, as in RE2), `(?i:...)` inside its group.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.fold = False
        self.folded = False
        """Some literal was read under `(?i)`."""

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self) -> str:
        if self.pos >= len(self.text):
            raise Unsupported("unexpected end of pattern")
        ch = self.text[self.pos]
        self.pos += 1
        return ch

    def parse(self) -> _Info:
        info = self.alternation()
        if self.pos != len(self.text):
            raise Unsupported(f"unexpected {self.peek()!r} at {self.pos}")
        return info

    def alternation(self) -> _Info:
        branches = [self.concatenation()]
        while self.peek() == "|":
            self.pos += 1
            branches.append(self.concatenation())
        return branches[0] if len(branches) == 1 else _alternate(branches)

    def concatenation(self) -> _Info:
        parts: list[_Info] = []
        while self.peek() not in ("", "|", ")"):
            if self.text.startswith("(?", self.pos) and self.flags_only():
                continue
            parts.append(self.quantified(self.atom()))
        return _concat(parts) if parts else _EMPTY

    def flags_only(self) -> bool:
        """`(?flags)`, which sets flags for the rest of the group: read it if it is one."""
        end = self.text.find(")", self.pos)
        body = self.text[self.pos + 2 : end] if end > 0 else ""
        if not body or any(c not in "imsU-" for c in body):
            return False
        self.pos = end + 1
        self.fold = _fold_after(body, self.fold)
        return True

    def quantified(self, item: _Info) -> _Info:
        while True:
            ch = self.peek()
            if ch in ("*", "+", "?"):
                self.pos += 1
                item = _repeat(item, 0 if ch != "+" else 1, 1 if ch == "?" else None)
            elif ch == "{" and (bounds := self.braces()) is not None:
                item = _repeat(item, *bounds)
            else:
                return item
            if self.peek() == "?":  # lazy: the same strings
                self.pos += 1

    def braces(self) -> tuple[int, int | None] | None:
        """`{n}`, `{n,}`, `{n,m}`; anything else is a literal `{` in RE2."""
        end = self.text.find("}", self.pos)
        if end < 0:
            return None
        low, comma, high = self.text[self.pos + 1 : end].partition(",")
        if not low.isdigit() or (high and not high.isdigit()):
            return None
        self.pos = end + 1
        if not comma:
            return int(low), int(low)
        return int(low), (int(high) if high else None)

    def atom(self) -> _Info:
        ch = self.take()
        if ch == "(":
            return self.group()
        if ch == "[":
            self.char_class()
            return _ANY
        if ch == ".":
            return _ANY
        if ch in ("^", "$"):
            return _EMPTY
        if ch == "\\":
            return self.escape()
        if ch in ("*", "+", "?", ")", "|"):
            raise Unsupported(f"{ch!r} with nothing to repeat at {self.pos}")
        return self.literal(ch)

    def literal(self, ch: str) -> _Info:
        if not self.fold or not ch.isalpha():
            return _Info(frozenset({ch.encode("latin-1")}), None)
        if ord(ch) >= 0x80:
            return _ANY  # Latin-1 letters fold outside ASCII: not modelled
        self.folded = True
        return _Info(frozenset({ch.lower().encode("latin-1")}), None)

    def group(self) -> _Info:
        saved = self.fold
        if self.peek() == "?":
            self.pos += 1
            self.group_flags()
        info = self.alternation()
        self.fold = saved
        if self.take() != ")":
            raise Unsupported("unclosed group")
        return info

    def group_flags(self) -> None:
        """After `(?`: a name (`P<name>`, `<name>`) or `flags:`."""
        if self.peek() in ("P", "<"):
            end = self.text.find(">", self.pos)
            if end < 0:
                raise Unsupported("unclosed group name")
            self.pos = end + 1
            return
        end = self.text.find(":", self.pos)
        body = self.text[self.pos : end] if end >= 0 else "?"
        if any(c not in "imsU-" for c in body):
            raise Unsupported(f"group (?{body}")
        self.pos = end + 1
        self.fold = _fold_after(body, self.fold)

    def char_class(self) -> None:
        """Skip a bracket expression: it matches one unknown character."""
        if self.peek() == "^":
            self.pos += 1
        if self.peek() == "]":
            self.pos += 1
        while (ch := self.take()) != "]":
            if ch == "\\":
                self.class_escape()
            elif ch == "[" and self.peek() == ":":
                end = self.text.find(":]", self.pos)
                if end < 0:
                    raise Unsupported("unclosed [:class:]")
                self.pos = end + 2

    def class_escape(self) -> None:
        ch = self.take()
        if ch in ("x", "p", "P") and self.peek() == "{":
            end = self.text.find("}", self.pos)
            if end < 0:
                raise Unsupported(f"unclosed \\{ch}{{")
            self.pos = end + 1
        elif ch == "Q":
            raise Unsupported("\\Q in a class")

    def escape(self) -> _Info:
        ch = self.take()
        if ch in _PERL_CLASSES or ch == "C":
            return _ANY
        if ch in _EMPTY_ESCAPES:
            return _EMPTY
        if ch in _CONTROL:
            return self.literal(_CONTROL[ch])
        if ch == "x":
            return self.literal(self.hex_escape())
        if ord(ch) < 0x80 and not ch.isalnum():
            return self.literal(ch)
        raise Unsupported(f"escape \\{ch}")

    def hex_escape(self) -> str:
        if self.peek() == "{":
            end = self.text.find("}", self.pos)
            digits = self.text[self.pos + 1 : end] if end > 0 else ""
            self.pos = end + 1
        else:
            digits = self.text[self.pos : self.pos + 2]
            self.pos += 2
        if not digits or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise Unsupported(f"\\x{digits}")
        code = int(digits, 16)
        if code > 0xFF:
            raise Unsupported("a code point above 0xFF")
        return chr(code)


def _fold_after(flags: str, fold: bool) -> bool:
    on, _, off = flags.partition("-")
    if "i" in off:
        return False
    return True if "i" in on else fold


def required(pattern: str) -> Required | None:
    """The literals every match of ``pattern`` contains, or None if there is no such set
    this reader can vouch for."""
    parser = _Parser(pattern.encode("utf-8").decode("latin-1"))
    try:
        literals = parser.parse().best()
    except Unsupported:
        return None
    if not literals or b"" in literals:
        return None
    if any(b"\n" in s for s in literals):  # a rule matches within one line: never
        return None
    if parser.folded:
        literals = frozenset(s.lower() for s in literals)
    return Required(literals, parser.folded)
