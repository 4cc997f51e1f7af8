"""The metrics: ledger counts by action, reason and fault class; up from `up()`; no
`_created` series in either exposition format."""

import asyncio
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.exposition import choose_encoder
from prometheus_client.parser import text_string_to_metric_families

from watcher.reporting.metrics import Metrics
from watcher.state.ledger import Ledger, LedgerEntry
from watcher.types import Action, Decision, FaultClass, Finding, Severity

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class Source:
    """A monitor whose health and source the test sets."""

    def __init__(self, name: str, *, healthy: bool, up: bool) -> None:
        self.name = name
        self.ready = asyncio.Event()
        self._healthy = healthy
        self._up = up

    async def run(self, emit: Any) -> None:
        await asyncio.Event().wait()

    def healthy(self) -> tuple[bool, str]:
        return self._healthy, "fine"

    def up(self) -> bool:
        return self._up

    def status(self) -> dict[str, Any]:
        return {}

    def counters(self) -> dict[str, float]:
        return {"polls": 7.0}


def samples(metrics: Metrics) -> Samples:
    text = generate_latest(metrics.registry).decode()
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def entry(action: str, reason: str, fault_class: str, at: float) -> LedgerEntry:
    return LedgerEntry(action=action, reason=reason, time=at, fault_class=fault_class)


def ledger_with(tmp_path: Path, *entries: LedgerEntry) -> Ledger:
    ledger = Ledger(tmp_path)
    for item in entries:
        ledger.append(item)
    reloaded = Ledger(tmp_path)  # what the next process reads back
    reloaded.load()
    return reloaded


def labels(action: str, reason: str, fault_class: str) -> tuple[tuple[str, str], ...]:
    return (("action", action), ("fault_class", fault_class), ("reason", reason))


def test_ledger_actions_are_counted_by_value_reason_and_fault_class(tmp_path: Path) -> None:
    ledger = ledger_with(
        tmp_path,
        entry("restart", "NcclWatchdogTimeout", "transient", 1000.0),
        entry("restart", "NcclWatchdogTimeout", "transient", 1100.0),
        entry("restart", "CudaIllegalAddress", "application", 1200.0),
        entry("hold", "CudaIllegalAddress", "application", 1300.0),
        entry("fail", "XidGpuFallenOffBus", "hardware", 1400.0),  # an action to come
    )
    found = samples(Metrics([], ledger, lambda: 3, lambda: True))
    actions = {k: v for k, v in found.items() if k[0] == "watcher_actions_total"}
    assert actions == {
        ("watcher_actions_total", labels("restart", "NcclWatchdogTimeout", "transient")): 2,
        ("watcher_actions_total", labels("restart", "CudaIllegalAddress", "application")): 1,
        ("watcher_actions_total", labels("hold", "CudaIllegalAddress", "application")): 1,
        ("watcher_actions_total", labels("fail", "XidGpuFallenOffBus", "hardware")): 1,
    }
    last = {k[1]: v for k, v in found.items() if k[0] == "watcher_last_action_timestamp_seconds"}
    assert last == {
        (("action", "restart"),): 1200.0,
        (("action", "hold"),): 1300.0,
        (("action", "fail"),): 1400.0,
    }
    assert found[("watcher_restarts_in_window", ())] == 3
    assert found[("watcher_holding", ())] == 1


def test_an_entry_appended_while_running_is_counted_at_the_next_scrape(tmp_path: Path) -> None:
    ledger = ledger_with(tmp_path)
    metrics = Metrics([], ledger, lambda: 0, lambda: False)
    assert not [k for k in samples(metrics) if k[0] == "watcher_actions_total"]
    ledger.append(entry("evict", "XidGpuFallenOffBus", "hardware", 50.0))
    found = samples(metrics)
    assert found[("watcher_actions_total", labels("evict", "XidGpuFallenOffBus", "hardware"))] == 1
    assert found[("watcher_last_action_timestamp_seconds", (("action", "evict"),))] == 50.0


def test_monitor_up_reads_up_not_healthy(tmp_path: Path) -> None:
    monitors = [
        Source("gpu", healthy=True, up=False),  # alive, but every poll fails
        Source("log", healthy=True, up=True),
    ]
    found = samples(Metrics(monitors, ledger_with(tmp_path), lambda: 0, lambda: False))
    assert found[("watcher_monitor_up", (("monitor", "gpu"),))] == 0
    assert found[("watcher_monitor_up", (("monitor", "log"),))] == 1
    assert found[("watcher_gpu_polls_total", ())] == 7


def test_process_counts_and_no_created_series_in_either_format(tmp_path: Path) -> None:
    ledger = ledger_with(tmp_path, entry("restart", "NcclError", "transient", 10.0))
    metrics = Metrics([Source("log", healthy=True, up=True)], ledger, lambda: 1, lambda: False)
    finding = Finding("log", "NcclError", Severity.FATAL, FaultClass.TRANSIENT, "x", 1.0)
    metrics.finding(finding)
    metrics.decision(Decision(Action.RESTART, finding, "because"))
    metrics.dropped.inc()
    found = samples(metrics)
    key = (("fault_class", "transient"), ("reason", "NcclError"))
    assert found[("watcher_findings_total", (*key, ("severity", "fatal"), ("source", "log")))] == 1
    decided = (("action", "restart"), ("dry_run", "false"))
    assert found[("watcher_decisions_total", decided)] == 1
    assert found[("watcher_findings_dropped_total", ())] == 1
    text = generate_latest(metrics.registry).decode()
    assert text.count("\nwatcher_findings_dropped_total ") == 1, text
    encode, kind = choose_encoder("application/openmetrics-text;version=1.0.0")
    assert kind.startswith("application/openmetrics-text")
    openmetrics = encode(metrics.registry).decode()
    assert "watcher_actions_total" in openmetrics and openmetrics.endswith("# EOF\n")
    for exposition in (text, openmetrics):
        assert "_created" not in exposition, exposition


def test_the_unlabelled_dropped_counter_exists_at_zero(tmp_path: Path) -> None:
    found = samples(Metrics([], ledger_with(tmp_path), lambda: 0, lambda: False))
    assert found[("watcher_findings_dropped_total", ())] == 0
