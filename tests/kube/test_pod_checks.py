"""The traps of in-place restarts in a whole Pod spec, and `pod-watcher check --pod`."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from watcher.kube.pod_checks import check_pod

Obj = dict[str, Any]
RULE_88 = {"action": "RestartAllContainers", "exitCodes": {"operator": "In", "values": [88]}}
NOT_ZERO = {"action": "RestartAllContainers", "exitCodes": {"operator": "NotIn", "values": [0]}}
SHARED = {"name": "pod-watcher", "mountPath": "/pod-watcher"}


def watcher(**fields: Any) -> Obj:
    base: Obj = {
        "name": "pod-watcher",
        "restartPolicy": "Always",
        "restartPolicyRules": [RULE_88],
        "startupProbe": {"httpGet": {"path": "/readyz", "port": 9188}},
        "env": [{"name": "WATCHER_LAUNCHER_DIR", "value": "/pod-watcher"}],
        "volumeMounts": [SHARED],
    }
    return {**base, **fields}


def trainer(command: list[str], **fields: Any) -> Obj:
    return {"name": "trainer", "command": command, "volumeMounts": [SHARED], **fields}


LAUNCHED = ["python3", "/pod-watcher/launch", "--", "python", "train.py"]


def reasons(spec: Obj, launcher: str | None = "/pod-watcher") -> list[str]:
    return [p.reason for p in check_pod(spec, "pod-watcher", 88, launcher)]


def pod(*containers: Obj, inits: list[Obj] | None = None) -> Obj:
    return {"restartPolicy": "Never", "initContainers": inits or [watcher()],
            "containers": list(containers)}  # fmt: skip


def test_a_launched_trainer_is_wired() -> None:
    assert reasons(pod(trainer(LAUNCHED))) == []
    executable = trainer(["/pod-watcher/launch", "--", "torchrun", "train.py"])
    assert reasons(pod(executable)) == []


def test_a_trainer_that_can_die_first_unnoticed_is_named() -> None:
    [problem] = check_pod(pod(trainer(["python", "train.py"])), "pod-watcher", 88, "/pod-watcher")
    assert problem.reason == "WorkloadNotLaunched"
    assert "'trainer' runs neither through the launcher" in problem.message
    assert "python3 /pod-watcher/launch -- <command>" in problem.message
    assert reasons(pod(trainer(["python", "train.py"])), launcher=None) == ["WorkloadNotLaunched"]


def test_the_fallback_rule_on_the_trainer_covers_it_without_the_launcher() -> None:
    fallback = trainer(["sh", "-c", "python train.py"], restartPolicyRules=[NOT_ZERO])
    assert reasons(pod(fallback), launcher=None) == []
    only_one = trainer(["python"], restartPolicyRules=[
        {"action": "RestartAllContainers", "exitCodes": {"operator": "In", "values": [1]}}
    ])  # fmt: skip
    assert reasons(pod(only_one), launcher=None) == ["WorkloadNotLaunched"]  # 137 fails it


def test_a_restart_rule_beside_the_launcher_has_no_brake() -> None:
    [problem] = check_pod(
        pod(trainer(LAUNCHED, restartPolicyRules=[NOT_ZERO])), "pod-watcher", 88, "/pod-watcher"
    )
    assert problem.reason == "RestartRuleOnLaunchedWorkload"
    assert "exit codes [1, 134, 137, 139]" in problem.message


def test_a_launcher_the_watcher_does_not_know_of_is_named() -> None:
    assert reasons(pod(trainer(LAUNCHED)), launcher=None) == ["LauncherNotConfigured"]


def test_the_launcher_directory_must_be_shared() -> None:
    other = trainer(LAUNCHED, volumeMounts=[{"name": "scratch", "mountPath": "/pod-watcher"}])
    assert reasons(pod(other)) == ["LauncherNotShared"]
    elsewhere = trainer(LAUNCHED, volumeMounts=[{"name": "pod-watcher", "mountPath": "/pw"}])
    assert reasons(pod(elsewhere)) == ["LauncherNotShared"]


def test_the_watcher_must_be_awaited_and_first() -> None:
    ungated = watcher()
    del ungated["startupProbe"]
    assert reasons(pod(trainer(LAUNCHED), inits=[ungated])) == ["WatcherNotAwaited"]
    setup = {"name": "setup", "command": ["sh", "-c", "true"]}
    assert reasons(pod(trainer(LAUNCHED), inits=[setup, watcher()])) == ["WatcherNotFirst"]


def test_a_restart_policy_other_than_never_lets_the_kubelet_restart_the_trainer() -> None:
    spec = {**pod(trainer(["python", "train.py"])), "restartPolicy": "OnFailure"}
    assert reasons(spec) == []


def run_check(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watcher", "check", "--pod", *map(str, files)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_check_pod_finds_every_pod_spec_and_names_the_problem(tmp_path: Path) -> None:
    deployment = {"kind": "Deployment", "metadata": {"name": "d"},
                  "spec": {"template": {"spec": pod(trainer(LAUNCHED))}}}  # fmt: skip
    pytorchjob = {
        "kind": "PyTorchJob", "metadata": {"name": "p"},
        "spec": {"pytorchReplicaSpecs": {"Worker": {"template": {"spec": pod(
            {"name": "pytorch", "command": ["torchrun", "train.py"]})}}}},
    }  # fmt: skip
    manifest = tmp_path / "jobs.yaml"
    manifest.write_text(yaml.safe_dump_all([deployment, pytorchjob]))
    result = run_check(manifest)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    where = f"{manifest}: PyTorchJob/p at spec.pytorchReplicaSpecs.Worker.template.spec"
    assert lines[0].startswith(f"{where}: WorkloadNotLaunched: 'pytorch' runs neither")
    assert lines[-1] == "1 of 2 Pod specs are wired for in-place restarts"


@pytest.mark.parametrize(
    ("text", "message"),
    [("a: [", "not valid YAML"), ("- 1\n", "every document must be a mapping")],
)
def test_check_pod_refuses_what_is_not_a_manifest(tmp_path: Path, text: str, message: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    result = run_check(bad)
    assert result.returncode == 2 and message in result.stderr
    missing = run_check(tmp_path / "missing.yaml")
    assert missing.returncode == 2 and "cannot read it" in missing.stderr
