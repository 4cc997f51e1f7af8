"""The decision log: one structured log line per decision that does something, with the
finding's evidence, rate-limited per reason (LOG_BURST a minute; the rest are counted and
summarised in the next line)."""

import logging

from watcher.clock import Clock
from watcher.types import Action, Decision, Finding

log = logging.getLogger("watcher.findings")

LOG_BURST = 10
"""Log lines per reason per minute; the rest are counted and summarised."""


class DecisionLog:
    name = "log"

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._logged: dict[str, tuple[float, int, int]] = {}

    def finding(self, finding: Finding) -> None:
        """Findings show in their decision's line."""

    def decision(self, decision: Decision) -> None:
        if decision.action is Action.NONE:
            return
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
