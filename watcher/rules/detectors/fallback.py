"""A generic failure line that yields to a specific one.

Some lines say that something failed without saying what: an ``NCCL WARN`` that a
connection failed, an exception class of a framework, a CHECK of a C++ library. They are
worth a finding when nothing else explains the failure, and noise next to the line that
does (the `DistBackendError` three lines later names the NCCL error precisely). A rule
with ``detector: fallback`` is matched like any rule, its pattern and excludes on one line,
in the rule matcher's pass; `DetectorSet` then drops its hit when a plain fatal rule names
a line at or shortly after it in the same read.
"""

from collections.abc import Iterator

from watcher.rules.detectors import Triggers
from watcher.rules.matcher import LineHit
from watcher.rules.rule import Rule


class FallbackDetector:
    """The rule's own matches, reported unless a specific rule follows."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule

    def new_state(self) -> None:
        return None

    def scan(
        self, data: bytes, end: int, first: int, state: None, triggers: Triggers
    ) -> Iterator[LineHit]:
        return (hit for hit in triggers.hits if hit.line_start >= first)
