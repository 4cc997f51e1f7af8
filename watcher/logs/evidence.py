"""Turn raw log bytes into evidence text fit for a log line, an Event or a termination message."""

import re

from watcher.rules.matcher import LineHit

MAX_EVIDENCE = 1024
"""Characters of one evidence line kept; a longer line is cut around the match."""

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
"""C0 and C1 controls (terminal escapes) and the Unicode line separators; tabs stay."""


def evidence_line(line: bytes, match_start: int = 0, limit: int = MAX_EVIDENCE) -> str:
    """Decode a line (invalid UTF-8 replaced), escape control bytes, cut to ``limit``.

    A long line keeps a little context before the match and as much as fits after it.
    """
    line = line.removesuffix(b"\r")
    if len(line) > limit:
        start = max(0, min(match_start - limit // 8, len(line) - limit))
        prefix = "…" if start > 0 else ""
        suffix = "…" if start + limit < len(line) else ""
        line = line[start : start + limit]
    else:
        prefix = suffix = ""
    text = line.decode("utf-8", "replace")
    text = _CONTROL.sub(_escape, text)
    return prefix + text + suffix


def evidence_lines(data: bytes, end: int, hit: LineHit) -> tuple[str, ...]:
    """The matched line, then up to the rule's ``context_lines`` whole lines that follow
    it in ``data[:end]`` (what arrived with it: a traceback's next lines, CUDA's hints)."""
    context = hit.rule.context_lines
    found = [evidence_line(hit.line, hit.match_start)]
    position = hit.line_start + len(hit.line) + 1
    while len(found) <= context and position < end:
        newline = data.find(b"\n", position, end)
        stop = end if newline < 0 else newline
        found.append(evidence_line(data[position:stop]))
        position = stop + 1
    return tuple(found)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
