"""Helpers for the inject tests: the upstream manifests, running `pod-watcher inject` as a
process, what kubernetes-validate can check in each kind, and Pod specs compared as the
API compares them."""

import copy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]
UPSTREAM = Path(__file__).resolve().parent / "upstream"
REPOSITORY = Path(__file__).resolve().parents[2]


def upstream(name: str) -> Path:
    return UPSTREAM / name


def load_all(text: str) -> list[Obj]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def inject(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """`pod-watcher inject ARGS` as a process, the way a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "watcher", "inject", *args],
        input=stdin, capture_output=True, text=True, timeout=60, check=False, cwd=REPOSITORY,
    )  # fmt: skip


def check_pod(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "watcher", "check", "--pod", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _job(name: str, template: Obj) -> Obj:
    metadata = {**(template.get("metadata") or {}), "name": name}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata,
            "spec": template["spec"]}  # fmt: skip


def _pod_template(name: str, template: Obj) -> Obj:
    return {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name},
            "template": template}  # fmt: skip


def validatable(document: Obj) -> Iterator[tuple[str, Obj]]:
    """What the Kubernetes schemas can check in ``document``: itself for built-in kinds,
    the embedded Job and Pod templates of the custom resources, as their controllers use
    them."""
    kind, name = document["kind"], document["metadata"]["name"]
    spec = document.get("spec") or {}
    if kind in ("Pod", "Job", "CronJob"):
        yield f"{kind}/{name}", document
    elif kind == "JobSet":
        for job in spec["replicatedJobs"]:
            yield f"JobSet/{name}/{job['name']}", _job(job["name"], job["template"])
    elif kind in ("TrainingRuntime", "ClusterTrainingRuntime"):
        for job in spec["template"]["spec"]["replicatedJobs"]:
            yield f"{kind}/{name}/{job['name']}", _job(job["name"], job["template"])
    elif kind == "PyTorchJob":
        for role, replica in spec["pytorchReplicaSpecs"].items():
            yield f"PyTorchJob/{name}/{role}", _pod_template(role.lower(), replica["template"])


def train_job_pods(documents: list[Obj]) -> Iterator[tuple[str, Obj]]:
    """The Pod spec the Trainer controller builds for each TrainJob: its runtime's trainer
    job, the container `node` given the TrainJob's image and command (spec.trainer)."""
    runtimes = {
        (d["kind"], d["metadata"]["name"]): d
        for d in documents
        if d["kind"] in ("TrainingRuntime", "ClusterTrainingRuntime")
    }
    for job in (d for d in documents if d["kind"] == "TrainJob"):
        ref = job["spec"]["runtimeRef"]
        runtime = runtimes[(ref.get("kind", "ClusterTrainingRuntime"), ref["name"])]
        (trainer_job,) = [
            j for j in runtime["spec"]["template"]["spec"]["replicatedJobs"] if j["name"] == "node"
        ]
        spec = copy.deepcopy(trainer_job["template"]["spec"]["template"]["spec"])
        (node,) = [c for c in spec["containers"] if c["name"] == "node"]
        trainer = job["spec"].get("trainer") or {}
        for field in ("image", "command", "args"):
            if field in trainer:
                node[field] = trainer[field]
        yield f"TrainJob/{job['metadata']['name']}", spec


def keyed(spec: Obj) -> Obj:
    """A Pod spec with its volumes as a mapping by name: the API keys them by name
    (listType map), so their order carries no meaning."""
    spec = copy.deepcopy(spec)
    spec["volumes"] = {v["name"]: v for v in spec.get("volumes", ())}
    return spec
