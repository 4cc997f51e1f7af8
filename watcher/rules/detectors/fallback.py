"""A generic failure line that yields to a specific one.

Some lines say that something failed without saying what: an ``NCCL WARN`` that a
connection failed, an exception class of a framework, a CHECK of a C++ library. They are
worth a finding when nothing else explains the failure, and noise next to the line that
does (the `DistBackendError` three lines later names the NCCL error precisely). A rule
with ``detector: fallback`` is matched like any rule, its pattern and excludes on one line;
`DetectorSet` then drops its hit when a plain fatal rule names a line at or shortly after
it in the same read.
"""

from collections.abc import Iterator

from watcher.rules.detectors import Finder, full_line
from watcher.rules.matcher import LineHit
from watcher.rules.regex import compile_pattern
from watcher.rules.rule import Rule


class FallbackDetector:
    """The rule's pattern, line by line, reported unless a specific rule follows."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self._finder = Finder(rule)
        self._include = compile_pattern(rule.effective_pattern, capture=False)
        self._excludes = [compile_pattern(p, capture=False) for p in rule.effective_excludes]

    def new_state(self) -> None:
        return None

    def scan(self, data: bytes, end: int, first: int, state: None) -> Iterator[LineHit]:
        pos = first
        while pos < end:
            start = self._finder.line_start(data, pos, end)
            if start < 0:
                return
            line = full_line(data, start, end)
            match = self._include.search(line)
            if match is not None and not any(ex.search(line) for ex in self._excludes):
                yield LineHit(self.rule, start, line, match.start())
            pos = start + len(line) + 1
