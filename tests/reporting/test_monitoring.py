"""manifests/monitoring: the PrometheusRule's groups pass `promtool check rules` and the
unit tests of tests/reporting/promtool; the dashboard's queries are valid PromQL; the
PodMonitor scrapes the sidecar's port; the kustomization holds together.

Without promtool (Debian's `prometheus` package) the promtool tests skip, unless
POD_WATCHER_REQUIRE_PROMTOOL=1 (set by .ci/run, which installs it) makes that a failure.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.reporting.test_dashboard import DASHBOARD, MONITORING, RULES, dashboard_queries
from watcher.config.settings import WatcherSettings

ROOT = Path(__file__).resolve().parents[2]
UNIT_TESTS = Path(__file__).resolve().parent / "promtool" / "alerts.test.yaml"
GRAFANA_VARIABLES = {"$namespace": ".*", "$pod": ".*", "$__rate_interval": "5m"}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        reason = "promtool is not installed (Debian: apt-get install prometheus)"
        if os.environ.get("POD_WATCHER_REQUIRE_PROMTOOL") == "1":
            pytest.fail(f"{reason} (POD_WATCHER_REQUIRE_PROMTOOL=1)", pytrace=False)
        pytest.skip(reason)
    return found


def run_promtool(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def rule_file(path: Path, groups: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False), "utf-8")
    return path


def alerts() -> list[dict[str, Any]]:
    return [rule for group in RULES["spec"]["groups"] for rule in group["rules"]]


def test_the_prometheus_rule_groups_pass_promtool(tmp_path: Path) -> None:
    rule_file(tmp_path / "rules.yaml", RULES["spec"]["groups"])
    checked = run_promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert f"SUCCESS: {len(alerts())} rules found" in checked
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    assert "SUCCESS" in run_promtool("test", "rules", UNIT_TESTS.name, cwd=tmp_path)


def test_the_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Each query, its Grafana variables filled in, as a recording rule for promtool."""
    rules = []
    for number, query in enumerate(dashboard_queries()):
        expr = query
        if expr.startswith("label_values("):  # Grafana's own: its selector is PromQL
            expr = expr.removeprefix("label_values(").rsplit(",", 1)[0]
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:query_{number}", "expr": expr})
    rule_file(tmp_path / "dashboard.yaml", [{"name": "dashboard", "rules": rules}])
    checked = run_promtool("check", "rules", "dashboard.yaml", cwd=tmp_path)
    assert f"SUCCESS: {len(rules)} rules found" in checked


def test_the_prometheus_rule_object() -> None:
    assert (RULES["apiVersion"], RULES["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert RULES["metadata"]["name"] == "pod-watcher"
    assert set(RULES["spec"]) == {"groups"}
    names = [rule["alert"] for rule in alerts()]
    assert len(set(names)) == len(names)
    tested = UNIT_TESTS.read_text("utf-8")
    for rule in alerts():
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert set(rule["annotations"]) == {"summary", "description"}, rule["alert"]
        assert f"alertname: {rule['alert']}\n" in tested, f"{rule['alert']} is never tested"


def sidecar() -> dict[str, Any]:
    pod = yaml.safe_load((ROOT / "manifests" / "pod.yaml").read_text("utf-8"))
    (container,) = [c for c in pod["spec"]["initContainers"] if c["name"] == "pod-watcher"]
    assert isinstance(container, dict)
    return container


def test_the_pod_monitor_scrapes_the_sidecars_metrics_port() -> None:
    monitor = yaml.safe_load((MONITORING / "podmonitor.yaml").read_text("utf-8"))
    assert (monitor["apiVersion"], monitor["kind"]) == ("monitoring.coreos.com/v1", "PodMonitor")
    spec = monitor["spec"]
    assert set(spec) == {"namespaceSelector", "selector", "podMetricsEndpoints"}
    (endpoint,) = spec["podMetricsEndpoints"]
    ports = {p["name"]: p["containerPort"] for p in sidecar()["ports"]}
    assert ports[endpoint["port"]] == WatcherSettings.model_fields["http_port"].default
    assert endpoint["path"] == "/metrics"


def test_the_kustomization_and_its_dashboard_config_map() -> None:
    kustomization = yaml.safe_load((MONITORING / "kustomization.yaml").read_text("utf-8"))
    assert sorted(kustomization["resources"]) == ["podmonitor.yaml", "prometheusrule.yaml"]
    (generator,) = kustomization["configMapGenerator"]
    (entry,) = generator["files"]
    key, file = entry.split("=")
    assert (MONITORING / file).read_text("utf-8") == json.dumps(DASHBOARD, indent=2) + "\n"
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": generator["name"], "labels": generator["options"]["labels"]},
        "data": {key: (MONITORING / file).read_text("utf-8")},
    }
    kubernetes_validate.validate(config_map, "1.35.0", strict=True)
    assert generator["options"]["labels"]["grafana_dashboard"] == "1"
