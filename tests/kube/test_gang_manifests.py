"""The gang manifests (manifests/gang/): valid for Kubernetes 1.35 and 1.36 (a JobSet
against our JobSet schema), wired for in-place restarts, what JobSet's webhook requires of
InPlaceRestart, rendezvous wiring, a barrier deadline below the startup probe's, least
privilege, and a watcher environment that `pod-watcher check` accepts."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.kube import jobset_schema
from tests.kube.manifests import (
    MANIFESTS,
    VERSIONS,
    WATCHER,
    Obj,
    container,
    documents,
    env,
    run_here,
)
from watcher.kube.pod_checks import check_pod
from watcher.kube.wiring import check_wiring

GANG = MANIFESTS / "gang"
FILES = sorted(p for p in GANG.glob("*.yaml") if p.name != "kustomization.yaml")
OBJECTS = [(path.name, obj) for path in FILES for obj in documents(path)]
INDEX = "metadata.annotations['batch.kubernetes.io/job-completion-index']"


def of_kind(kind: str, file: str | None = None) -> list[Obj]:
    return [o for f, o in OBJECTS if o["kind"] == kind and file in (None, f)]


def job_specs() -> list[tuple[str, Obj]]:
    found = [("job-lease.yaml", job["spec"]) for job in of_kind("Job")]
    for js in of_kind("JobSet"):
        found += [("jobset.yaml", rj["template"]["spec"]) for rj in js["spec"]["replicatedJobs"]]
    return found


PODS = [(file, spec["template"]["spec"]) for file, spec in job_specs()]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("file", "obj"), OBJECTS, ids=[f"{f}:{o['kind']}" for f, o in OBJECTS])
def test_every_object_validates(file: str, obj: Obj, version: str) -> None:
    if obj["kind"] == "JobSet":
        assert jobset_schema.problems(obj) == []
    else:
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_jobset_meets_the_in_place_restart_webhook() -> None:
    (js,) = of_kind("JobSet")
    assert js["spec"]["failurePolicy"]["restartStrategy"] == "InPlaceRestart"
    for job in js["spec"]["replicatedJobs"]:
        spec = job["template"]["spec"]
        assert spec["backoffLimit"] == 2**31 - 1
        assert spec["podReplacementPolicy"] == "Failed"
        assert spec["completions"] == spec["parallelism"]


@pytest.mark.parametrize(("file", "spec"), PODS, ids=[f for f, _ in PODS])
def test_wiring_and_the_barrier(file: str, spec: Obj) -> None:
    watcher = container(spec, WATCHER)
    launcher = env(watcher)["WATCHER_LAUNCHER_DIR"]["value"]
    assert check_wiring(spec, WATCHER, 88) == []
    assert check_pod(spec, WATCHER, 88, launcher) == []
    probe = watcher["startupProbe"]
    assert probe["httpGet"]["path"] == "/readyz"  # the barrier
    barrier = float(env(watcher)["WATCHER_GANG_BARRIER_TIMEOUT"]["value"])
    assert barrier < probe["failureThreshold"] * probe["periodSeconds"]


@pytest.mark.parametrize(("file", "spec"), PODS, ids=[f for f, _ in PODS])
def test_rendezvous(file: str, spec: Obj) -> None:
    trainer = env(container(spec, "trainer"))
    assert trainer["NODE_RANK"]["valueFrom"]["fieldRef"]["fieldPath"] == INDEX
    if file == "jobset.yaml":
        (js,) = of_kind("JobSet")
        first = js["spec"]["replicatedJobs"][0]["name"]
        assert trainer["MASTER_ADDR"]["value"] == f"$(JOBSET_NAME)-{first}-0-0.$(JOBSET_NAME)"
        label = "metadata.labels['jobset.sigs.k8s.io/jobset-name']"
        assert trainer["JOBSET_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == label
        return
    (service,) = of_kind("Service")
    (job,) = of_kind("Job")
    assert (
        service["spec"]["clusterIP"] == "None" and spec["subdomain"] == service["metadata"]["name"]
    )
    assert service["spec"]["selector"] == {"batch.kubernetes.io/job-name": job["metadata"]["name"]}
    assert trainer["MASTER_ADDR"]["value"] == f"{job['metadata']['name']}-0.{spec['subdomain']}"


def granted(role: Obj) -> dict[tuple[str, str, str], set[str]]:
    found: dict[tuple[str, str, str], set[str]] = {}
    for rule in role["rules"]:
        names = ",".join(rule.get("resourceNames", ["*"]))
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                found.setdefault((group, resource, names), set()).update(rule["verbs"])
    return found


BASE = {
    ("", "events", "*"): {"create", "patch"},
    ("", "pods/eviction", "*"): {"create"},
}
RBAC = {
    "rbac-jobset.yaml": BASE
    | {
        ("", "pods", "*"): {"get", "patch"},
        ("jobset.x-k8s.io", "jobsets", "*"): {"get", "list", "watch"},
    },
    "rbac-lease.yaml": BASE
    | {
        ("", "pods", "*"): {"get", "patch", "list", "watch"},
        ("coordination.k8s.io", "leases", "trainer"): {"get", "update"},
        ("coordination.k8s.io", "leases", "*"): {"list", "watch", "create"},
    },
}


@pytest.mark.parametrize(("file", "workload"), [("rbac-jobset.yaml", "jobset.yaml"),
                                                ("rbac-lease.yaml", "job-lease.yaml")])  # fmt: skip
def test_rbac_is_exactly_what_each_mode_needs(file: str, workload: str) -> None:
    (role,) = of_kind("Role", file)
    assert granted(role) == RBAC[file]
    (binding,) = of_kind("RoleBinding", file)
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    (account,) = of_kind("ServiceAccount", file)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"]}]
    (spec,) = [s for f, s in PODS if f == workload]
    assert spec["serviceAccountName"] == account["metadata"]["name"]
    assert of_kind("ClusterRole") == []


def test_the_kustomization_composes_existing_files() -> None:
    (kustomization,) = documents(GANG / "kustomization.yaml")
    for name in kustomization["resources"]:
        assert (GANG / name).is_file(), name


def watcher_env(spec: Obj, tmp_path: Path) -> dict[str, str]:
    samples = {INDEX: "0", "metadata.labels['jobset.sigs.k8s.io/jobset-name']": "trainer",
               "metadata.name": "trainer-0", "metadata.namespace": "default"}  # fmt: skip
    found = {}
    for name, entry in env(container(spec, WATCHER)).items():
        path = entry.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        found[name] = samples[path] if path else entry["value"]
    (configmap,) = [d for d in documents(MANIFESTS / "configmap-rules.yaml")]
    return run_here(found, configmap, tmp_path)


@pytest.mark.parametrize(("file", "spec"), PODS, ids=[f for f, _ in PODS])
def test_the_watcher_s_gang_environment_passes_check(file: str, spec: Obj, tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("WATCHER_")}
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "check"],
        env=clean | watcher_env(spec, tmp_path), cwd=tmp_path,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    effective: dict[str, Any] = json.loads(result.stdout)
    assert effective["warnings"] == []
    settings = effective["settings"]
    assert settings["gang"] == ("jobset" if file == "jobset.yaml" else "lease")
    assert settings["gang_name"] == "trainer"
