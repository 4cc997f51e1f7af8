"""The README tells the truth: its Pod validates, its table lists every setting, its
examples load."""

import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from watcher.config.settings import WatcherSettings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text("utf-8")


def yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", README, re.DOTALL)


@pytest.mark.parametrize("version", ["1.35.0", "1.36.0"])
def test_pod_snippet_is_a_valid_pod_with_the_restart_rule(version: str) -> None:
    pods = [doc for doc in map(yaml.safe_load, yaml_blocks()) if doc.get("kind") == "Pod"]
    assert len(pods) == 1
    (pod,) = pods
    kubernetes_validate.validate(pod, version, strict=True)
    (sidecar,) = pod["spec"]["initContainers"]
    assert sidecar["restartPolicy"] == "Always"
    (rule,) = sidecar["restartPolicyRules"]
    assert rule == {
        "action": "RestartAllContainers",
        "exitCodes": {"operator": "In", "values": [88]},
    }


def test_configuration_table_lists_every_setting() -> None:
    table = README.split("## Configuration", 1)[1].split("### Rules", 1)[0]
    for name in WatcherSettings.model_fields:
        variable = "WATCHER_ACTIONS__<CLASS>" if name == "actions" else f"WATCHER_{name.upper()}"
        assert f"`{variable}`" in table, f"{variable} is not documented"
    documented = set(re.findall(r"^\| `(WATCHER_[A-Z_]+)`", table, re.MULTILINE))
    known = {f"WATCHER_{name.upper()}" for name in WatcherSettings.model_fields}
    assert documented <= known | {"WATCHER_ACTIONS__"}


def check(example: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "watcher.yaml"
    config.write_text(example, "utf-8")
    return subprocess.run(
        [sys.executable, "-m", "watcher", "check"],
        env={
            "WATCHER_CONFIG": str(config),
            "WATCHER_LOG_PATHS": str(tmp_path / "*.log"),
            "WATCHER_STATE_DIR": str(tmp_path / "state"),
            "WATCHER_TERMINATION_LOG": "",
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def config_examples() -> list[str]:
    return [block for block in yaml_blocks() if block.startswith("# WATCHER_CONFIG file")]


def test_rules_example_is_a_valid_config_file(tmp_path: Path) -> None:
    (example,) = [block for block in config_examples() if "rules:" in block]
    result = check(example, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "CheckpointWriteFailed" in result.stdout
    assert '"reason": "NcclIbAsyncPortError"' not in result.stdout


def test_demo_config_checks_from_the_repository_root() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "check"],
        cwd=ROOT,
        env={"WATCHER_CONFIG": "examples/local.yaml"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"examples/logs/*.log"' in result.stdout


def test_probes_example_is_a_valid_config_file(tmp_path: Path) -> None:
    (example,) = [block for block in config_examples() if "probes:" in block]
    result = check(example, tmp_path)
    assert result.returncode == 0, result.stderr
    assert '"reason": "TrainerUnhealthy"' in result.stdout
    assert '"fault_class": "transient"' in result.stdout
