"""RE2 on bytes with byte (Latin-1) semantics: the only regex engine rules run on.

Patterns are written as text; they are encoded to UTF-8 and compiled as Latin-1 so that
RE2 works byte by byte: `.` matches any byte but newline, `\\d`, `\\w`, `\\b` are ASCII,
and invalid UTF-8 in a log cannot upset the engine. A non-ASCII literal in a pattern
still matches its UTF-8 bytes in the log.
"""

from typing import Any, Final

import re2

MAX_MEM: Final = 64 << 20
"""RE2's DFA budget per compiled pattern. The default 8 MiB can run out on a large
combined alternation over a megabyte chunk, and RE2 then falls back to a slow engine."""

_HINTS: Final = (
    ("(?=", "look-ahead (?=...) is not supported: RE2 runs in linear time without it"),
    ("(?!", "negative look-ahead (?!...) is not supported: use an `exclude` pattern instead"),
    ("(?<=", "look-behind (?<=...) is not supported: RE2 runs in linear time without it"),
    ("(?<!", "negative look-behind (?<!...) is not supported: use an `exclude` pattern instead"),
    ("(?P=", "backreferences are not supported by RE2"),
    ("(?>", "atomic groups (?>...) are not supported by RE2"),
    ("\\Z", "\\Z is not supported: rules match one line at a time, use $"),
)


class PatternError(ValueError):
    """A pattern RE2 cannot compile, or one that makes no sense as a rule."""


def to_bytes(pattern: str) -> bytes:
    """The pattern as RE2 sees it: UTF-8 bytes, to be compiled with Latin-1 semantics."""
    return pattern.encode("utf-8")


def options(*, capture: bool = True) -> Any:
    """RE2 options for byte semantics and quiet errors."""
    opts = re2.Options()
    opts.encoding = re2.Options.Encoding.LATIN1
    opts.log_errors = False
    opts.max_mem = MAX_MEM
    opts.never_capture = not capture
    return opts


def compile_pattern(pattern: str, *, capture: bool = True) -> Any:
    """Compile one pattern; raise `PatternError` with a message a user can act on."""
    _reject_text_anchors(pattern)
    try:
        return re2.compile(to_bytes(pattern), options(capture=capture))
    except re2.error as exc:
        raise PatternError(_explain(pattern, exc)) from None


def compile_set(patterns: list[str]) -> Any:
    """An RE2 Set: which of these patterns match a line, in one pass."""
    regex_set = re2.Set.SearchSet(options(capture=False))
    for pattern in patterns:
        regex_set.Add(to_bytes(pattern))
    regex_set.Compile()
    return regex_set


def _explain(pattern: str, exc: Exception) -> str:
    for token, hint in _HINTS:
        if token in pattern:
            return hint
    if "\\1" in pattern or any(f"\\{d}" in pattern for d in range(1, 10)):
        return "backreferences (\\1...) are not supported by RE2"
    detail = exc.args[0] if exc.args else exc
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    return f"invalid regular expression: {detail}"


def _reject_text_anchors(pattern: str) -> None:
    r"""Refuse \A and \z: a rule is matched against one line, so they would mean the
    start and end of a read chunk instead. ^ and $ mean the line's start and end."""
    i = 0
    while i < len(pattern) - 1:
        if pattern[i] == "\\":
            if pattern[i + 1] in "Az":
                raise PatternError(
                    f"\\{pattern[i + 1]} is not supported: rules match one line at a time, "
                    "use ^ and $"
                )
            i += 2
        else:
            i += 1
