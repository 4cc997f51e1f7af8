"""/metrics and /status after real lines: counts of lines, bytes, findings and decisions."""

import json

import pytest

from tests.e2e.conftest import Spawn
from tests.e2e.workload import BENIGN, Paths, append

SLOW_STEP = {
    "reason": "SlowStep",
    "pattern": r"step time \d+ms exceeds",
    "severity": "warning",
    "fault_class": "infrastructure",
}


@pytest.mark.slow
def test_metrics_count_lines_findings_and_decisions(paths: Paths, spawn: Spawn) -> None:
    watcher = spawn(WATCHER_RULES=json.dumps([SLOW_STEP]))
    watcher.wait_ready()
    text = BENIGN * 3 + "step 121 | step time 9001ms exceeds 5000ms\n" + BENIGN
    offset = append(paths.log, text) + len(BENIGN) * 3
    watcher.wait_scanned(5)
    # the decision follows the scan by a loop iteration or two
    status = watcher.wait_status(lambda s: bool(s["recent_decisions"]), "the decision")
    assert status["monitors"]["log"]["lines_scanned"] == 5
    [finding] = status["recent_findings"]
    assert (finding["reason"], finding["offset"]) == ("SlowStep", offset)
    [decision] = status["recent_decisions"]
    assert decision["action"] == "warn"

    metrics = watcher.metrics()
    assert metrics[("watcher_log_lines_scanned_total", ())] == 5
    assert metrics[("watcher_log_bytes_scanned_total", ())] == len(text.encode())
    labels = (
        ("fault_class", "infrastructure"),
        ("reason", "SlowStep"),
        ("severity", "warning"),
        ("source", "log"),
    )
    assert metrics[("watcher_findings_total", labels)] == 1
    findings = [k for k in metrics if k[0] == "watcher_findings_total"]
    assert findings == [("watcher_findings_total", labels)]
    assert metrics[("watcher_decisions_total", (("action", "warn"), ("dry_run", "false")))] == 1
    assert metrics[("watcher_monitor_up", (("monitor", "log"),))] == 1
    assert metrics[("watcher_holding", ())] == 0
    assert metrics[("watcher_restarts_in_window", ())] == 0
    assert metrics[("watcher_findings_dropped_total", ())] == 0
    assert ("watcher_build_info", (("version", status["version"]),)) in metrics

    assert watcher.alive()
    assert watcher.status()["state"] == "watching"
    assert paths.ledger_entries() == []
    logged = watcher.wait_log(lambda r: r.get("event") == "decision", 5, "the decision log line")
    assert (logged["level"], logged["reason"], logged["offset"]) == ("warning", "SlowStep", offset)


@pytest.mark.slow
def test_health_endpoints_and_status_shape(paths: Paths, spawn: Spawn) -> None:
    watcher = spawn()
    watcher.wait_ready()
    health = watcher.get_json("/healthz")
    assert health["ok"] is True and health["dead_tasks"] == []
    assert watcher.get_json("/readyz") == {"ok": True, "monitors": {"log": True, "state": True}}
    status = watcher.status()
    assert status["state"] == "watching"
    assert status["start"]["mode"] == "fresh"
    assert status["budget"] == {
        "restarts_in_window": 0,
        "restarts_total": 0,
        "max_restarts": 3,
        "window_s": 3600.0,
        "min_uptime_s": 0.0,
        "backoff_s": 0.0,
    }
    [followed] = status["monitors"]["log"]["files"]
    assert followed["path"] == str(paths.log)
    assert status["ledger"] == []
    assert watcher.get("/nope")[0] == 404
