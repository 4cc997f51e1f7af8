"""The dashboard and the alerts name only metrics the watcher exports. The exported names
come from a scrape of a real watcher, built as `pod-watcher run` builds it with every
monitor configured, over its real HTTP server; the dashboard's layout holds together."""

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.gpu.fake_smi import SCRIPT
from watcher.clock import SystemClock
from watcher.config.load import load_config
from watcher.reporting.server import HttpServer, build_app
from watcher.service import Parts, build_runtime
from watcher.state.ledger import LedgerEntry
from watcher.types import Action, Decision, FaultClass, Finding, Severity
from watcher.workload.setup import open_launcher

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "manifests" / "monitoring"
DASHBOARD: dict[str, Any] = json.loads((MONITORING / "dashboard.json").read_text("utf-8"))
RULES: dict[str, Any] = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text("utf-8"))
NAME = re.compile(r"\bwatcher_[a-zA-Z0-9_]+")


def walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in nested dicts and lists."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def dashboard_queries() -> list[str]:
    """Panel and annotation queries, and the variables' label_values() queries."""
    queries = [v for k, v in walk(DASHBOARD) if k == "expr"]
    for variable in DASHBOARD["templating"]["list"]:
        if variable["type"] == "query":
            queries.append(variable["query"]["query"])
    return queries


def alert_queries() -> list[str]:
    return [rule["expr"] for group in RULES["spec"]["groups"] for rule in group["rules"]]


@pytest.fixture
async def exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The sample names of /metrics of a watcher with logs, probes, progress timers, a
    heartbeat and a GPU backend, after one ledger entry, one finding and one decision."""
    for name in [n for n in os.environ if n.upper().startswith("WATCHER_")]:
        monkeypatch.delenv(name)
    settings = {
        "WATCHER_LOG_PATHS": str(tmp_path / "*.log"),
        "WATCHER_STATE_DIR": str(tmp_path / "state"),
        "WATCHER_PROBES": json.dumps([{"type": "tcp", "host": "127.0.0.1", "port": 1}]),
        "WATCHER_SILENCE_TIMEOUT": "60",
        "WATCHER_HEARTBEAT_FILE": str(tmp_path / "heartbeat"),
        "WATCHER_HEARTBEAT_TIMEOUT": "60",
        "WATCHER_GPU": "nvidia-smi",
        "WATCHER_NVIDIA_SMI": str(SCRIPT),
        "WATCHER_LAUNCHER_DIR": str(tmp_path / "pw"),
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "state").mkdir()
    config = load_config()
    shared = open_launcher(config.settings.launcher_dir)
    watcher = build_runtime(config, Parts(SystemClock(), launcher=shared, environ={})).pipeline
    expected = {"log", "progress", "probes", "gpu", "workload", "state"}
    assert {m.name for m in watcher.monitors} == expected
    watcher.ledger.append(LedgerEntry("restart", "NcclError", 1.0, fault_class="transient"))
    finding = Finding("log", "NcclError", Severity.FATAL, FaultClass.TRANSIENT, "x", 1.0)
    watcher.emit(finding)
    watcher.metrics.decision(Decision(Action.RESTART, finding, "because"))
    server = HttpServer(build_app(watcher, watcher.metrics.registry), "127.0.0.1", 0)
    port = await server.start()
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as response,
        ):
            text = await response.text()
    finally:
        await server.stop()
    names = set()
    for family in text_string_to_metric_families(text):
        assert family.samples, f"{family.name} has no sample: its names would be missed"
        names |= {sample.name for sample in family.samples}
    return names


def test_every_metric_a_query_names_is_exported(exported: set[str]) -> None:
    for where, queries in (("dashboard", dashboard_queries()), ("alert", alert_queries())):
        named = {name for query in queries for name in NAME.findall(query)}
        assert named, f"no {where} query names a watcher metric"
        unknown = named - exported
        assert not unknown, f"{where} queries name metrics nobody exports: {sorted(unknown)}"


def test_the_dashboard_shows_what_on_call_needs(exported: set[str]) -> None:
    named = {name for query in dashboard_queries() for name in NAME.findall(query)}
    must = {
        "watcher_actions_total",
        "watcher_holding",
        "watcher_monitor_up",
        "watcher_restarts_in_window",
        "watcher_last_action_timestamp_seconds",
        "watcher_findings_total",
    }
    assert must <= named
    assert must <= exported


def test_the_dashboard_layout_holds_together() -> None:
    panels = DASHBOARD["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    variables = {v["name"] for v in DASHBOARD["templating"]["list"]}
    assert {"datasource", "namespace", "pod"} <= variables
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine
        assert panel["datasource"]["uid"] == "${datasource}"
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert ref_ids and len(set(ref_ids)) == len(ref_ids), panel["title"]
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]


def test_docs_list_every_exported_metric(exported: set[str]) -> None:
    docs = (ROOT / "docs" / "monitoring.md").read_text("utf-8")
    missing = {name for name in exported if f"`{name}`" not in docs}
    assert not missing, f"docs/monitoring.md does not describe {sorted(missing)}"
