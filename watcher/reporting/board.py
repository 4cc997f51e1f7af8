"""The status board: recent findings and decisions, kept for /status.

/status is served to anyone who reaches the port, so of a finding's evidence it shows
the matched line alone (trimmed, control bytes escaped): enough to tell what happened.
The lines after it (a traceback, CUDA's hints) stay in the ledger file, the termination
message and the log line of the decision.
"""

from collections import deque
from dataclasses import asdict
from typing import Any

from watcher.clock import Clock
from watcher.types import Decision, Finding

RECENT = 50
"""Findings and decisions kept for /status."""


class StatusBoard:
    """Remembers the latest findings and decisions, for /status."""

    name = "board"

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.findings: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self.decisions: deque[dict[str, Any]] = deque(maxlen=RECENT)

    def finding(self, finding: Finding) -> None:
        self.findings.append({**shown(asdict(finding)), "wall": self._clock.wall()})

    def decision(self, decision: Decision) -> None:
        record = {
            "action": decision.action.value,
            "reason": decision.finding.reason,
            "explanation": decision.explanation,
            "dry_run": decision.dry_run,
            "details": decision.details,
            "wall": self._clock.wall(),
        }
        self.decisions.append(record)


def shown(record: dict[str, Any]) -> dict[str, Any]:
    """A finding or ledger entry as /status shows it: the first evidence line only, and
    how many there were."""
    evidence = list(record.get("evidence") or ())
    return {**record, "evidence": evidence[:1], "evidence_lines": len(evidence)}
