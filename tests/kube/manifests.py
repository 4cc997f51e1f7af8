"""The shipped manifests as data, and Pod objects built from them for the fake API.

`manifests/pod.yaml`, `job.yaml` and `jobset.yaml` hold the same Pod spec; `pod_specs()`
finds every one of them (a JobSet's templates included), so each check runs on all.
"""

import copy
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
WATCHER = "pod-watcher"
TRAINER = "trainer"
VERSIONS = ("1.35.0", "1.36.0")
NOT_KUBERNETES = {"Kustomization"}
"""Kinds that are files for tools, never sent to an API server."""

Obj = dict[str, Any]


def manifest_files() -> list[Path]:
    return sorted(MANIFESTS.glob("*.yaml"))


def documents(path: Path) -> list[Obj]:
    """Every non-empty document of a (multi-document) YAML file."""
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


def objects() -> list[tuple[str, Obj]]:
    """(file name, object) for every Kubernetes object in every manifest file."""
    found = []
    for path in manifest_files():
        found += [(path.name, doc) for doc in documents(path) if doc["kind"] not in NOT_KUBERNETES]
    return found


def label(file: str, obj: Obj) -> str:
    return f"{file}:{obj['kind']}/{obj['metadata']['name']}"


def of_kind(kind: str) -> list[Obj]:
    return [obj for _, obj in objects() if obj["kind"] == kind]


def validatable() -> list[tuple[str, Obj]]:
    """What kubernetes_validate has schemas for: a JobSet (a CRD) becomes its Job templates."""
    found = []
    for file, obj in objects():
        if obj["kind"] != "JobSet":
            found.append((label(file, obj), obj))
            continue
        for job in obj["spec"]["replicatedJobs"]:
            wrapped = {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {**job["template"].get("metadata", {}), "name": job["name"]},
                "spec": job["template"]["spec"],
            }
            found.append((f"{label(file, obj)}/{job['name']}", wrapped))
    return found


def pod_specs() -> list[tuple[str, Obj]]:
    """(where, pod spec) for every Pod, Job template and JobSet template."""
    found: list[tuple[str, Obj]] = []
    for file, obj in objects():
        where = label(file, obj)
        if obj["kind"] == "Pod":
            found.append((where, obj["spec"]))
        elif obj["kind"] == "Job":
            found.append((where, obj["spec"]["template"]["spec"]))
        elif obj["kind"] == "JobSet":
            found += [
                (f"{where}/{job['name']}", job["template"]["spec"]["template"]["spec"])
                for job in obj["spec"]["replicatedJobs"]
            ]
    return found


def container(spec: Obj, name: str) -> Obj:
    every: list[Obj] = [*spec.get("initContainers", ()), *spec.get("containers", ())]
    matches = [c for c in every if c["name"] == name]
    assert len(matches) == 1, f"{len(matches)} containers named {name!r}"
    return matches[0]


def env(container_spec: Obj) -> dict[str, Obj]:
    """The container's env entries by name (each has `value` or `valueFrom`)."""
    entries = container_spec.get("env", ())
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), f"duplicate env names in {names}"
    return {e["name"]: e for e in entries}


def run_here(found: dict[str, str], configmap: Obj, tmp_path: Path) -> dict[str, str]:
    """A watcher environment ``found`` in a manifest, with its config file (from
    ``configmap``) and its volumes' paths moved under ``tmp_path``, so it can run here."""
    config = tmp_path / Path(found["WATCHER_CONFIG"]).name
    config.write_text(configmap["data"][config.name], "utf-8")
    return found | {
        "WATCHER_CONFIG": str(config),
        "WATCHER_LAUNCHER_DIR": str(tmp_path / "pod-watcher"),
        "WATCHER_STATE_DIR": str(tmp_path / "state"),
        "WATCHER_TERMINATION_LOG": "",
    }


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair anywhere in a nested object."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


# -- Pod objects as the API returns them ----------------------------------------------------


def timestamp(at: datetime | None = None) -> str:
    return (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def running_pod(name: str = "trainer", namespace: str = "default", restarts: int = 0) -> Obj:
    """manifests/pod.yaml as a scheduled, running Pod: every container started ``restarts``
    times over (an in-place restart bumps every container's restartCount)."""
    source = documents(MANIFESTS / "pod.yaml")[0]
    now = timestamp()
    spec = copy.deepcopy(source["spec"])
    spec["nodeName"] = "gpu-node-1"

    def status(c: Obj) -> Obj:
        return {
            "name": c["name"],
            "image": c["image"],
            "imageID": "",
            "containerID": f"containerd://{uuid.uuid4().hex}",
            "ready": True,
            "started": True,
            "restartCount": restarts,
            "state": {"running": {"startedAt": now}},
        }

    conditions = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "resourceVersion": "1",
            "creationTimestamp": now,
            "labels": dict(source["metadata"].get("labels", {})),
        },
        "spec": spec,
        "status": {
            "phase": "Running",
            "hostIP": "10.0.0.2",
            "podIP": "10.1.0.5",
            "startTime": now,
            "qosClass": "Burstable",
            "conditions": [
                {"type": kind, "status": "True", "lastTransitionTime": now} for kind in conditions
            ],
            "initContainerStatuses": [status(c) for c in spec["initContainers"]],
            "containerStatuses": [status(c) for c in spec["containers"]],
        },
    }


def restart_in_place(pod: Obj, trigger: str = WATCHER, exit_code: int = 88) -> Obj:
    """What the kubelet reports after RestartAllContainers: every container restarted once,
    ``trigger`` last terminated with ``exit_code``, the others killed (137)."""
    pod = copy.deepcopy(pod)
    now = timestamp()
    status = pod["status"]
    for entry in [*status["initContainerStatuses"], *status["containerStatuses"]]:
        started = entry["state"].get("running", {}).get("startedAt", now)
        code = exit_code if entry["name"] == trigger else 137
        entry["lastState"] = {
            "terminated": {
                "exitCode": code,
                "reason": "Error",
                "startedAt": started,
                "finishedAt": now,
                "containerID": entry["containerID"],
            }
        }
        entry["restartCount"] += 1
        entry["containerID"] = f"containerd://{uuid.uuid4().hex}"
        entry["state"] = {"running": {"startedAt": now}}
    return pod
