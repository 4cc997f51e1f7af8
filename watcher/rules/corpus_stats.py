"""How each built-in rule fared on the corpus of real logs, for `pod-watcher rules`.

`corpus_stats.json` next to this module is generated from `tests/corpus_real` (log
excerpts quoted from public issues, each labelled fatal or benign) by
``python -m tests.rules.real_report --write-stats``, with every built-in pack on; a test
fails when it no longer matches what the rules do on that corpus.
"""

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from watcher.rules.rule import Rule

FILE = "corpus_stats.json"


@dataclass(frozen=True)
class RealLogs:
    """One rule on the real-log corpus."""

    fatal_matched: int
    """Fatal excerpts it matched (as the watcher reports it: a generic rule that gave
    way to a specific one does not count)."""
    fatal_first: int
    """Of those, the ones where it was the first fatal finding: the reason reported."""
    fatal_excerpts: int
    benign_matched: int
    """Benign excerpts it matched: for a fatal rule, false alarms."""
    benign_checked: int

    def record(self) -> dict[str, int]:
        return {
            "fatal_matched": self.fatal_matched,
            "fatal_first": self.fatal_first,
            "fatal_excerpts": self.fatal_excerpts,
            "benign_matched": self.benign_matched,
            "benign_checked": self.benign_checked,
        }

    def text(self) -> str:
        return (
            f"real logs: matched {self.fatal_matched} of {self.fatal_excerpts} fatal excerpts, "
            f"{self.benign_matched} of {self.benign_checked} benign"
        )


@cache
def _table() -> dict[str, Any]:
    text = (resources.files("watcher.rules") / FILE).read_text("utf-8")
    table: dict[str, Any] = json.loads(text)
    return table


def real_logs(rule: Rule) -> RealLogs | None:
    """The figures of a built-in rule; None for a rule of the user's (or one the corpus
    has not seen yet)."""
    if rule.pack is None:
        return None
    table = _table()
    entry = table["rules"].get(rule.reason)
    if entry is None:
        return None
    return RealLogs(
        fatal_matched=entry["fatal_matched"],
        fatal_first=entry["fatal_first"],
        fatal_excerpts=table["fatal_excerpts"],
        benign_matched=entry["benign_matched"],
        benign_checked=table["benign_excerpts"],
    )
