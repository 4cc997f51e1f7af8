"""The status board: recent findings and decisions, kept for /status and the logs.

/status is served to anyone who reaches the port, so of a finding's evidence it shows
the matched line alone (trimmed, control bytes escaped): enough to tell what happened.
The lines after it (a traceback, CUDA's hints) stay in the ledger file, the termination
message and the log line of the decision.
"""

import logging
from collections import deque
from dataclasses import asdict
from typing import Any

from watcher.clock import Clock
from watcher.types import Action, Decision, Finding

log = logging.getLogger("watcher.findings")

RECENT = 50
"""Findings and decisions kept for /status."""
LOG_BURST = 10
"""Log lines per reason per minute; the rest are counted and summarised."""


class StatusBoard:
    """Remembers what happened lately and writes one log line per finding, rate-limited."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.findings: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self.decisions: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self._logged: dict[str, tuple[float, int, int]] = {}

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
        if decision.action is not Action.NONE:
            self._log(decision)

    def _log(self, decision: Decision) -> None:
        finding = decision.finding
        now = self._clock.monotonic()
        start, logged, suppressed = self._logged.get(finding.reason, (now, 0, 0))
        if now - start >= 60:
            start, logged = now, 0
        if logged >= LOG_BURST:
            self._logged[finding.reason] = (start, logged, suppressed + 1)
            return
        self._logged[finding.reason] = (start, logged + 1, 0)
        fields = {
            "event": "decision",
            "action": decision.action.value,
            "dry_run": decision.dry_run,
            "reason": finding.reason,
            "severity": finding.severity.value,
            "fault_class": finding.fault_class.value,
            "file": finding.file,
            "offset": finding.offset,
            "occurrences": finding.occurrences,
            "evidence": list(finding.evidence),
            "suppressed_since_last": suppressed,
        }
        level = logging.WARNING if decision.action is Action.WARN else logging.ERROR
        log.log(level, decision.explanation, extra={"fields": fields})


def shown(record: dict[str, Any]) -> dict[str, Any]:
    """A finding or ledger entry as /status shows it: the first evidence line only, and
    how many there were."""
    evidence = list(record.get("evidence") or ())
    return {**record, "evidence": evidence[:1], "evidence_lines": len(evidence)}
