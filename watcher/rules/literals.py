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

The set algebra (exact, required and prefix sets per node) is in
`watcher.rules.literal_sets`.
"""

from dataclasses import dataclass
from typing import Final

from watcher.rules.literal_sets import ANY, EMPTY, Info, alternate, concat, repeat

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

    def parse(self) -> Info:
        info = self.alternation()
        if self.pos != len(self.text):
            raise Unsupported(f"unexpected {self.peek()!r} at {self.pos}")
        return info

    def alternation(self) -> Info:
        branches = [self.concatenation()]
        while self.peek() == "|":
            self.pos += 1
            branches.append(self.concatenation())
        return branches[0] if len(branches) == 1 else alternate(branches)

    def concatenation(self) -> Info:
        parts: list[Info] = []
        while self.peek() not in ("", "|", ")"):
            if self.text.startswith("(?", self.pos) and self.flags_only():
                continue
            parts.append(self.quantified(self.atom()))
        return concat(parts) if parts else EMPTY

    def flags_only(self) -> bool:
        """`(?flags)`, which sets flags for the rest of the group: read it if it is one."""
        end = self.text.find(")", self.pos)
        body = self.text[self.pos + 2 : end] if end > 0 else ""
        if not body or any(c not in "imsU-" for c in body):
            return False
        self.pos = end + 1
        self.fold = _fold_after(body, self.fold)
        return True

    def quantified(self, item: Info) -> Info:
        while True:
            ch = self.peek()
            if ch in ("*", "+", "?"):
                self.pos += 1
                item = repeat(item, 0 if ch != "+" else 1, 1 if ch == "?" else None)
            elif ch == "{" and (bounds := self.braces()) is not None:
                item = repeat(item, *bounds)
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

    def atom(self) -> Info:
        ch = self.take()
        if ch == "(":
            return self.group()
        if ch == "[":
            self.char_class()
            return ANY
        if ch == ".":
            return ANY
        if ch in ("^", "$"):
            return EMPTY
        if ch == "\\":
            return self.escape()
        if ch in ("*", "+", "?", ")", "|"):
            raise Unsupported(f"{ch!r} with nothing to repeat at {self.pos}")
        return self.literal(ch)

    def literal(self, ch: str) -> Info:
        if not self.fold or not ch.isalpha():
            return Info(frozenset({ch.encode("latin-1")}), None)
        if ord(ch) >= 0x80:
            return ANY  # Latin-1 letters fold outside ASCII: not modelled
        self.folded = True
        return Info(frozenset({ch.lower().encode("latin-1")}), None)

    def group(self) -> Info:
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

    def escape(self) -> Info:
        ch = self.take()
        if ch in _PERL_CLASSES or ch == "C":
            return ANY
        if ch in _EMPTY_ESCAPES:
            return EMPTY
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
