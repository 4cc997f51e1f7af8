"""Reporters: every observer of findings and decisions, behind one small protocol.

As node-problem-detector hands every problem to each exporter in turn, the watcher hands
every finding and every decision to each reporter: the decision log, the status board,
the metrics and the Kubernetes Events. A reporter observes; it never decides, and it
never stands between a decision and its action:

- guarded: one that raises is counted (``watcher_reporter_failures_total``) and logged
  at most once a minute, and the watcher goes on acting;
- bounded: constant work per call and bounded memory; a reporter that needs I/O (the
  Events) queues it, with a limit, and drains it later under a deadline.
"""

import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from watcher.types import Decision, Finding

log = logging.getLogger(__name__)

COMPLAIN_EVERY = 60.0
"""Seconds between two log lines about the same failing reporter."""


class Reporter(Protocol):
    name: str
    """Short and stable: the label of its failures in /metrics."""

    def finding(self, finding: Finding) -> None:
        """A monitor's finding, as it is queued for the policy."""

    def decision(self, decision: Decision) -> None:
        """The policy's decision, before it is carried out."""


class Reporters:
    """The fan-out: each finding and decision to every reporter, each call guarded."""

    def __init__(self, reporters: Sequence[Reporter] = ()) -> None:
        self._reporters = list(reporters)
        self.failures: Counter[str] = Counter()
        self._complained: dict[str, float] = {}

    def add(self, reporter: Reporter) -> None:
        self._reporters.append(reporter)

    def failure_counts(self) -> dict[str, int]:
        """Failures by reporter, zero included (every reporter has its series)."""
        return {r.name: self.failures[r.name] for r in self._reporters}

    def finding(self, finding: Finding) -> None:
        for reporter in self._reporters:
            try:
                reporter.finding(finding)
            except Exception as exc:  # a reporter's bug must not stop the watcher
                self._failed(reporter, exc)

    def decision(self, decision: Decision) -> None:
        for reporter in self._reporters:
            try:
                reporter.decision(decision)
            except Exception as exc:  # a reporter's bug must not stop the watcher
                self._failed(reporter, exc)

    def _failed(self, reporter: Reporter, exc: Exception) -> None:
        self.failures[reporter.name] += 1
        now = time.monotonic()
        if now - self._complained.get(reporter.name, -COMPLAIN_EVERY) >= COMPLAIN_EVERY:
            self._complained[reporter.name] = now
            log.error(
                "reporter %s failed (%d times so far): %s",
                reporter.name,
                self.failures[reporter.name],
                exc,
                exc_info=exc,
                extra={"fields": {"reporter": reporter.name}},
            )
