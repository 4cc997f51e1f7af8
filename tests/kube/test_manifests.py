"""The shipped manifests: valid for Kubernetes 1.35 and 1.36, wired for in-place restarts,
least privilege, and consistent with each other and with the watcher's configuration."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.kube.manifests import (
    MANIFESTS,
    TRAINER,
    VERSIONS,
    WATCHER,
    Obj,
    container,
    documents,
    env,
    manifest_files,
    objects,
    of_kind,
    pod_specs,
    run_here,
    validatable,
    walk,
)
from watcher.kube.pod_checks import check_pod
from watcher.kube.wiring import check_wiring

PODS = pod_specs()
POD_IDS = [where for where, _ in PODS]
VALIDATABLE = validatable()


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("where", "obj"), VALIDATABLE, ids=[w for w, _ in VALIDATABLE])
def test_every_object_validates_strictly(where: str, obj: Obj, version: str) -> None:
    kubernetes_validate.validate(obj, version, strict=True)


def test_the_expected_objects_are_there() -> None:
    kinds = {(obj["kind"], obj["metadata"]["name"]) for _, obj in objects()}
    assert kinds == {
        ("Pod", "trainer"),
        ("Job", "trainer"),
        ("JobSet", "trainer"),
        ("ConfigMap", "pod-watcher-config"),
        ("ServiceAccount", "pod-watcher"),
        ("Role", "pod-watcher"),
        ("RoleBinding", "pod-watcher"),
    }
    assert len(PODS) == 3


def _nodes(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [node] + [n for pair in node.value for part in pair for n in _nodes(part)]
    if isinstance(node, yaml.SequenceNode):
        return [node] + [n for item in node.value for n in _nodes(item)]
    return [node]


def _flow_collections(text: str) -> list[str]:
    """Non-empty collections written in flow style ({a: 1}, [1]); `{}` alone is fine."""
    return [
        f"line {node.start_mark.line + 1}"
        for document in yaml.compose_all(text)
        for node in _nodes(document)
        if isinstance(node, yaml.CollectionNode) and node.flow_style and node.value
    ]


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_block_style(path: Path) -> None:
    assert _flow_collections(path.read_text("utf-8")) == []
    for doc in documents(path):
        if doc["kind"] == "ConfigMap":
            for key, text in doc["data"].items():
                assert _flow_collections(text) == [], key


# -- the restart wiring ------------------------------------------------------------------


def _exit_code(watcher: Obj) -> int:
    entry = env(watcher).get("WATCHER_RESTART_EXIT_CODE")
    return int(entry["value"]) if entry else 88


@pytest.mark.parametrize(("where", "spec"), PODS, ids=POD_IDS)
def test_wiring(where: str, spec: Obj) -> None:
    watcher = container(spec, WATCHER)
    name = env(watcher)["WATCHER_CONTAINER_NAME"]["value"]
    assert name == WATCHER
    assert check_wiring(spec, name, _exit_code(watcher)) == []
    launcher = env(watcher)["WATCHER_LAUNCHER_DIR"]["value"]
    assert check_pod(spec, name, _exit_code(watcher), launcher) == []


def test_check_pod_passes_the_shipped_manifests() -> None:
    files = [str(MANIFESTS / name) for name in ("pod.yaml", "job.yaml", "jobset.yaml")]
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "check", "--pod", *files],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "3 of 3 Pod specs are wired for in-place restarts"


def _first_matching_action(container_spec: Obj, code: int) -> str | None:
    for rule in container_spec.get("restartPolicyRules", ()):
        codes = rule["exitCodes"]
        if (code in codes["values"]) == (codes["operator"] == "In"):
            return str(rule["action"])
    return None


@pytest.mark.parametrize(("where", "spec"), PODS, ids=POD_IDS)
def test_no_other_exit_restarts_the_pod(where: str, spec: Obj) -> None:
    """Clean stop, crash, bad configuration, OOM kill, SIGTERM: only the watcher restarts
    (check_wiring looks at the restart code alone)."""
    for every in [*spec["initContainers"], *spec["containers"]]:
        for code in (0, 1, 2, 137, 143):
            assert _first_matching_action(every, code) is None, (every["name"], code)


@pytest.mark.parametrize(("where", "spec"), PODS, ids=POD_IDS)
def test_pod_policies(where: str, spec: Obj) -> None:
    assert spec["restartPolicy"] == "Never"
    assert spec["serviceAccountName"] == of_kind("ServiceAccount")[0]["metadata"]["name"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    watcher = container(spec, WATCHER)
    assert watcher["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert "/var/run/secrets/kubernetes.io/serviceaccount" in _mounts(watcher)
    assert "/var/run/secrets/kubernetes.io/serviceaccount" not in _mounts(container(spec, TRAINER))


@pytest.mark.parametrize(("where", "spec"), PODS, ids=POD_IDS)
def test_security_context(where: str, spec: Obj) -> None:
    context = container(spec, WATCHER)["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 65532
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not context.get("privileged", False)


@pytest.mark.parametrize(("where", "spec"), PODS, ids=POD_IDS)
def test_resources(where: str, spec: Obj) -> None:
    resources = container(spec, WATCHER)["resources"]
    assert resources["requests"] == {"cpu": "50m", "memory": "96Mi"}
    assert resources["limits"]["memory"] == "128Mi"
    limit = str(resources["limits"].get("cpu", "200m"))
    cores = float(limit[:-1]) / 1000 if limit.endswith("m") else float(limit)
    assert cores >= 0.2, "a lower CPU limit stalls the catch-up (CFS throttling)"


def test_no_host_access_and_no_wildcards() -> None:
    for file, obj in objects():
        for key, value in walk(obj):
            assert key != "hostPath", file
            assert not (key in ("hostNetwork", "hostPID", "hostIPC", "privileged") and value)
            assert value != "*" and not (isinstance(value, list) and "*" in value), file


def _mounts(container_spec: Obj) -> dict[str, Obj]:
    return {m["mountPath"]: m for m in container_spec.get("volumeMounts", ())}


def _volume_at(spec: Obj, container_spec: Obj, path: str) -> tuple[Obj, Obj]:
    """The mount holding ``path`` in the container, and its volume."""
    holders = [
        m for p, m in _mounts(container_spec).items() if path.startswith(p.rstrip("/") + "/")
    ]
    assert holders, f"{path} is on no volume of {container_spec['name']}"
    mount = max(holders, key=lambda m: len(m["mountPath"]))
    volume = next(v for v in spec["volumes"] if v["name"] == mount["name"])
    return mount, volume


@pytest.mark.parametrize(("where", "spec"), PODS, ids=POD_IDS)
def test_env_and_volumes_fit_together(where: str, spec: Obj) -> None:
    watcher, trainer = container(spec, WATCHER), container(spec, TRAINER)
    variables = env(watcher)
    for name, field in (("NAME", "metadata.name"), ("NAMESPACE", "metadata.namespace")):
        assert variables[f"WATCHER_POD_{name}"]["valueFrom"] == {"fieldRef": {"fieldPath": field}}
    state = variables["WATCHER_STATE_DIR"]["value"]
    mount, volume = _volume_at(spec, watcher, state + "/ledger.jsonl")
    assert "emptyDir" in volume and not mount.get("readOnly", False)
    assert volume["emptyDir"]["sizeLimit"] == "32Mi"  # docs/fail-closed.md: 8 MiB ledger and more
    assert volume["name"] not in {m["name"] for m in trainer["volumeMounts"]}, "budget tamper"
    launcher = variables["WATCHER_LAUNCHER_DIR"]["value"]
    assert "WATCHER_LOG_PATHS" not in variables  # the launcher brings the workload's output
    mount, volume = _volume_at(spec, watcher, launcher + "/launch")
    shared = _volume_at(spec, trainer, launcher + "/launch")
    assert shared == (mount, volume) and not mount.get("readOnly", False)
    assert volume["emptyDir"]["sizeLimit"] == "96Mi"  # 3 x 16 MiB of output, and room
    assert trainer["command"][:3] == ["python3", launcher + "/launch", "--"]
    assert "env" not in trainer, "no PYTHONUNBUFFERED or anything else to set by hand"
    config = Path(variables["WATCHER_CONFIG"]["value"])
    _, volume = _volume_at(spec, watcher, str(config))
    configmaps = {c["metadata"]["name"]: c for c in of_kind("ConfigMap")}
    assert config.name in configmaps[volume["configMap"]["name"]]["data"]


@pytest.mark.parametrize(("where", "spec"), PODS, ids=POD_IDS)
def test_probes(where: str, spec: Obj) -> None:
    watcher = container(spec, WATCHER)
    ports = {p["name"]: p["containerPort"] for p in watcher["ports"]}
    for probe, path in (("startupProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = watcher[probe]["httpGet"]
        assert get["path"] == path
        assert ports.get(get["port"], get["port"]) == 9188
    assert "readinessProbe" not in watcher


def test_the_pod_is_the_same_in_every_manifest() -> None:
    first = PODS[0][1]
    for where, spec in PODS[1:]:
        assert spec == first, where


def test_job_failure_policies() -> None:
    replicated = [j["template"] for s in of_kind("JobSet") for j in s["spec"]["replicatedJobs"]]
    jobs = of_kind("Job") + replicated
    for job in jobs:
        rules = job["spec"]["podFailurePolicy"]["rules"]
        ignored = [r for r in rules if r["action"] == "Ignore"]
        assert ignored[0]["onPodConditions"] == [{"type": "DisruptionTarget", "status": "True"}]
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


# -- RBAC, kustomize, configuration ------------------------------------------------------


def test_rbac_is_exactly_what_the_watcher_needs() -> None:
    (role,) = of_kind("Role")
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, "no resourceNames, no URLs"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    assert granted == {
        ("", "events"): {"create", "patch"},
        ("", "pods"): {"get", "patch"},
        ("", "pods/eviction"): {"create"},
    }
    assert of_kind("ClusterRole") == [] and of_kind("ClusterRoleBinding") == []
    (binding,) = of_kind("RoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    account = of_kind("ServiceAccount")[0]["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account}]


def test_kustomization_composes_existing_files() -> None:
    (kustomization,) = documents(MANIFESTS / "kustomization.yaml")
    resources = kustomization["resources"]
    for name in resources:
        assert (MANIFESTS / name).is_file(), name
    assert {"rbac.yaml", "configmap-rules.yaml"} <= set(resources)
    workloads = {"pod.yaml", "job.yaml", "jobset.yaml"} & set(resources)
    assert len(workloads) == 1, "pod, job and jobset are alternatives"


def _watcher_env(tmp_path: Path) -> dict[str, str]:
    """The watcher's environment in pod.yaml, its paths moved under ``tmp_path``."""
    variables = env(container(PODS[0][1], WATCHER)).items()
    found = {name: entry.get("value", "") for name, entry in variables}
    found |= {"WATCHER_POD_NAME": "trainer", "WATCHER_POD_NAMESPACE": "default"}
    (configmap,) = of_kind("ConfigMap")
    return run_here(found, configmap, tmp_path)


def test_the_watcher_s_environment_and_configmap_pass_check(tmp_path: Path) -> None:
    """`pod-watcher check` with the manifest's variables (every name known: no warning) and
    the ConfigMap's file."""
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("WATCHER_")}
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "check"],
        env=clean | _watcher_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    effective: dict[str, Any] = json.loads(result.stdout)
    assert effective["warnings"] == []
    settings = effective["settings"]
    assert (settings["pod_name"], settings["pod_namespace"]) == ("trainer", "default")
    assert settings["container_name"] == WATCHER and settings["restart_exit_code"] == 88
    rules = {rule["reason"]: rule for rule in effective["rules"]}
    assert rules["CheckpointWriteFailed"]["pack"] is None
    assert "retryable_errors=" in rules["NcclError"]["exclude"]
    assert settings["probes"] == []  # no probe of an endpoint most trainers do not serve
