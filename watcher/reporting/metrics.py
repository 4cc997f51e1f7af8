"""Prometheus metrics in a registry of our own (never the process-global one).

Two kinds of counts:

- what this process saw (findings, decisions, dropped findings): they start at zero
  with each process;
- what the ledger holds (restarts, evictions, holds, fails...): the ledger lives in the
  state directory, which survives in-place restarts, so a restart counted before the
  exit is still counted by the next process, with its reason and fault class.

Everything is collected at scrape time by collectors of our own, so no `_created`
series appear (prometheus-client adds one to each of its Counter objects, and the
OpenMetrics format shows it).
"""

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

from watcher import __version__
from watcher.monitor import Monitor
from watcher.state.ledger import LedgerEntry
from watcher.types import Decision, Finding


class LedgerView(Protocol):
    @property
    def entries(self) -> Sequence[LedgerEntry]:
        """Every entry read back at start plus those appended since, oldest first."""


class Counts:
    """A counter by label values, kept by this process, collected as one family."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = tuple(labels)
        self._values: dict[tuple[str, ...], float] = {}

    def inc(self, *values: str, amount: float = 1.0) -> None:
        assert len(values) == len(self.labels), (self.name, values)
        self._values[values] = self._values.get(values, 0.0) + amount

    def family(self) -> CounterMetricFamily:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        totals = dict(self._values)
        if not self.labels:  # an unlabelled counter exists from the start, at zero
            totals.setdefault((), 0.0)
        for values, total in sorted(totals.items()):
            family.add_metric(list(values), total)
        return family


def ledger_families(entries: Sequence[LedgerEntry]) -> Iterable[Metric]:
    """Actions counted by their ledger value (a new action needs no change here), and
    the time of the latest of each."""
    actions = CounterMetricFamily(
        "watcher_actions",
        "Actions recorded in the ledger (restart, evict, hold, fail...), which survives "
        "in-place restarts",
        labels=["action", "reason", "fault_class"],
    )
    for (action, reason, fault_class), total in sorted(
        Tally((e.action, e.reason, e.fault_class) for e in entries).items()
    ):
        actions.add_metric([action, reason, fault_class], total)
    yield actions
    latest: dict[str, float] = {}
    for entry in entries:
        latest[entry.action] = max(latest.get(entry.action, entry.time), entry.time)
    last = GaugeMetricFamily(
        "watcher_last_action_timestamp_seconds",
        "Wall-clock time of the latest ledger entry of each action (restart: the last "
        "in-place restart)",
        labels=["action"],
    )
    for action, at in sorted(latest.items()):
        last.add_metric([action], at)
    yield last


def monitor_families(monitors: Sequence[Monitor]) -> Iterable[Metric]:
    """Whether each monitor's source answered at its last look, and its own counters."""
    up = GaugeMetricFamily(
        "watcher_monitor_up",
        "1 while the monitor's source answered at its last look (files followed, probes "
        "answering, a GPU poll that succeeded, the API read)",
        labels=["monitor"],
    )
    for monitor in monitors:
        up.add_metric([monitor.name], 1.0 if monitor.up() else 0.0)
        for key, value in monitor.counters().items():
            yield CounterMetricFamily(
                f"watcher_{monitor.name}_{key}",
                f"{key.replace('_', ' ')} by the {monitor.name} monitor",
                value=value,
            )
    yield up


class Metrics:
    """Every metric the watcher exports; the collector of its registry, read at scrape time.
    Also a reporter: it counts findings and decisions."""

    name = "metrics"

    def __init__(
        self,
        monitors: Sequence[Monitor],
        ledger: LedgerView,
        restarts_in_window: Callable[[], int],
        holding: Callable[[], bool],
        reporter_failures: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self._monitors = monitors
        self._ledger = ledger
        self._restarts_in_window = restarts_in_window
        self._holding = holding
        self._reporter_failures = reporter_failures or dict
        self.findings = Counts(
            "watcher_findings",
            "Findings reported by monitors since this process started",
            ["source", "reason", "severity", "fault_class"],
        )
        self.decisions = Counts(
            "watcher_decisions",
            "Decisions taken by the policy since this process started",
            ["action", "dry_run"],
        )
        self.dropped = Counts(
            "watcher_findings_dropped", "Findings dropped because the policy queue was full"
        )
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def finding(self, finding: Finding) -> None:
        self.findings.inc(
            finding.source,
            finding.reason,
            finding.severity.value,
            finding.fault_class.value,
            amount=finding.occurrences,
        )

    def decision(self, decision: Decision) -> None:
        self.decisions.inc(decision.action.value, str(decision.dry_run).lower())

    def collect(self) -> Iterable[Metric]:
        build = InfoMetricFamily("watcher_build", "pod-watcher version")
        build.add_metric([], {"version": __version__})
        yield build
        yield from (self.findings.family(), self.decisions.family(), self.dropped.family())
        yield from ledger_families(self._ledger.entries)
        yield from monitor_families(self._monitors)
        yield GaugeMetricFamily(
            "watcher_restarts_in_window",
            "In-place restarts recorded in the ledger within the budget window",
            value=self._restarts_in_window(),
        )
        yield GaugeMetricFamily(
            "watcher_holding",
            "1 while the watcher holds (stays up but no longer acts)",
            value=1.0 if self._holding() else 0.0,
        )
        failures = CounterMetricFamily(
            "watcher_reporter_failures",
            "Calls of a reporter (log, board, metrics, events) that raised; the watcher "
            "went on acting",
            labels=["reporter"],
        )
        for reporter, count in sorted(self._reporter_failures().items()):
            failures.add_metric([reporter], count)
        yield failures
