"""Prometheus metrics in a registry of our own (never the process-global one)."""

from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from watcher import __version__
from watcher.monitor import Monitor
from watcher.types import Decision, Finding


class _MonitorCollector:
    """Reads each monitor's health and counters at scrape time."""

    def __init__(
        self,
        monitors: Sequence[Monitor],
        restarts_in_window: Callable[[], int],
        holding: Callable[[], bool],
    ) -> None:
        self._monitors = monitors
        self._restarts_in_window = restarts_in_window
        self._holding = holding

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "watcher_monitor_up", "1 while the monitor sees its source", labels=["monitor"]
        )
        for monitor in self._monitors:
            up.add_metric([monitor.name], 1.0 if monitor.healthy()[0] else 0.0)
            for key, value in monitor.counters().items():
                name = f"watcher_{monitor.name}_{key}"
                yield CounterMetricFamily(
                    name, f"{key.replace('_', ' ')} by the {monitor.name} monitor", value=value
                )
        yield up
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


class Metrics:
    """Every metric the watcher exports."""

    def __init__(
        self,
        monitors: Sequence[Monitor],
        restarts_in_window: Callable[[], int],
        holding: Callable[[], bool],
    ) -> None:
        self.registry = CollectorRegistry()
        self.findings = Counter(
            "watcher_findings",
            "Findings reported by monitors",
            ["source", "reason", "severity", "fault_class"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "watcher_decisions",
            "Decisions taken by the policy",
            ["action", "dry_run"],
            registry=self.registry,
        )
        self.dropped = Counter(
            "watcher_findings_dropped",
            "Findings dropped because the policy queue was full",
            registry=self.registry,
        )
        Info("watcher_build", "pod-watcher version", registry=self.registry).info(
            {"version": __version__}
        )
        self.registry.register(_MonitorCollector(monitors, restarts_in_window, holding))

    def finding(self, finding: Finding) -> None:
        self.findings.labels(
            finding.source, finding.reason, finding.severity.value, finding.fault_class.value
        ).inc(finding.occurrences)

    def decision(self, decision: Decision) -> None:
        self.decisions.labels(decision.action.value, str(decision.dry_run).lower()).inc()
