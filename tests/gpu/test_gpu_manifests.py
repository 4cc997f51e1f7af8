"""The GPU wiring of the shipped manifests: the default (the trainer holds the GPUs, the
launcher relays them) in pod.yaml, job.yaml and jobset.yaml, and the variants in
manifests/gpu/ (a shared DRA claim, dcgm-exporter). Each variant validates strictly
against the 1.35 and 1.36 schemas, passes the wiring checks, and differs from pod.yaml
in its GPU lines only."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.kube.manifests import (
    MANIFESTS,
    TRAINER,
    VERSIONS,
    WATCHER,
    Obj,
    container,
    documents,
    env,
    pod_specs,
    walk,
)
from watcher.kube.pod_checks import check_pod

GPU = "nvidia.com/gpu"
VARIANTS = sorted((MANIFESTS / "gpu").glob("*.yaml"))
GPU_ENV = {"WATCHER_GPU", "WATCHER_DCGM_EXPORTER_URL", "NODE_IP"}


def variant(name: str) -> tuple[list[Obj], Obj]:
    """The objects of manifests/gpu/<name>, and its Pod."""
    objects = documents(MANIFESTS / "gpu" / name)
    (pod,) = [o for o in objects if o["kind"] == "Pod"]
    return objects, pod


def test_the_variants_are_there() -> None:
    assert [p.name for p in VARIANTS] == ["pod-dcgm.yaml", "pod-dra.yaml"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", VARIANTS, ids=lambda p: p.name)
def test_every_variant_object_validates_strictly(path: Path, version: str) -> None:
    for obj in documents(path):
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("path", VARIANTS, ids=lambda p: p.name)
def test_every_variant_is_wired_for_in_place_restarts(path: Path) -> None:
    _, pod = variant(path.name)
    spec = pod["spec"]
    launcher = env(container(spec, WATCHER))["WATCHER_LAUNCHER_DIR"]["value"]
    assert check_pod(spec, WATCHER, 88, launcher) == []


def test_check_pod_passes_the_variants() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "check", "--pod", *map(str, VARIANTS)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "2 of 2 Pod specs are wired for in-place restarts"


@pytest.mark.parametrize(("where", "spec"), pod_specs(), ids=[w for w, _ in pod_specs()])
def test_by_default_the_trainer_holds_the_gpus_and_the_launcher_relays_them(
    where: str, spec: Obj
) -> None:
    trainer, watcher = container(spec, TRAINER), container(spec, WATCHER)
    assert int(trainer["resources"]["limits"][GPU]) >= 1
    assert GPU not in str(watcher["resources"])  # it would allocate other GPUs
    assert env(watcher)["WATCHER_GPU"]["value"] == "relay"
    assert "resourceClaims" not in spec


def without_gpus(spec: Obj) -> Obj:
    """The Pod spec with its GPU lines taken out."""
    spec = copy.deepcopy(spec)
    spec.pop("resourceClaims", None)
    for every in [*spec["initContainers"], *spec["containers"]]:
        every["env"] = [e for e in every.get("env", ()) if e["name"] not in GPU_ENV]
        if not every["env"]:
            del every["env"]
        resources = every.get("resources", {})
        resources.pop("claims", None)
        resources.get("limits", {}).pop(GPU, None)
        for key in [k for k, v in resources.items() if not v]:
            del resources[key]
        if "resources" in every and not resources:
            del every["resources"]
    return spec


@pytest.mark.parametrize("path", VARIANTS, ids=lambda p: p.name)
def test_a_variant_is_pod_yaml_but_for_its_gpu_lines(path: Path) -> None:
    (default,) = documents(MANIFESTS / "pod.yaml")
    _, pod = variant(path.name)
    assert pod["metadata"] == default["metadata"]
    assert without_gpus(pod["spec"]) == without_gpus(default["spec"])


def test_dra_one_claim_shared_by_both_containers_and_no_device_plugin_gpus() -> None:
    objects, pod = variant("pod-dra.yaml")
    spec = pod["spec"]
    (claim,) = spec["resourceClaims"]
    (template,) = [o for o in objects if o["kind"] == "ResourceClaimTemplate"]
    assert claim["resourceClaimTemplateName"] == template["metadata"]["name"]
    (request,) = template["spec"]["spec"]["devices"]["requests"]
    assert request["exactly"]["deviceClassName"] == "gpu.nvidia.com"
    for name in (WATCHER, TRAINER):
        assert container(spec, name)["resources"]["claims"] == [{"name": claim["name"]}]
    assert not [k for obj in objects for k, _ in walk(obj) if k == GPU]
    assert env(container(spec, WATCHER))["WATCHER_GPU"]["value"] == "nvml"


def test_dcgm_reads_the_node_s_exporter_and_the_trainer_holds_the_gpus() -> None:
    _, pod = variant("pod-dcgm.yaml")
    spec = pod["spec"]
    watcher = container(spec, WATCHER)
    names = [e["name"] for e in watcher["env"]]
    variables = env(watcher)
    assert variables["NODE_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    assert names.index("NODE_IP") < names.index("WATCHER_DCGM_EXPORTER_URL")  # $(NODE_IP)
    assert variables["WATCHER_DCGM_EXPORTER_URL"]["value"] == "http://$(NODE_IP):9400/metrics"
    assert variables["WATCHER_GPU"]["value"] == "dcgm"
    assert int(container(spec, TRAINER)["resources"]["limits"][GPU]) >= 1


@pytest.mark.parametrize("path", [MANIFESTS / "pod.yaml", *VARIANTS], ids=lambda p: p.name)
def test_the_watcher_s_gpu_settings_pass_check(path: Path, tmp_path: Path) -> None:
    """`pod-watcher check` with the manifest's variables, $(NODE_IP) as the kubelet
    expands it."""
    (pod,) = [o for o in documents(path) if o["kind"] == "Pod"]
    variables = {e["name"]: e.get("value", "") for e in container(pod["spec"], WATCHER)["env"]}
    variables["NODE_IP"] = "10.0.0.2"
    variables = {k: v.replace("$(NODE_IP)", variables["NODE_IP"]) for k, v in variables.items()}
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("WATCHER_")}
    overrides = {
        "WATCHER_CONFIG": "", "WATCHER_LAUNCHER_DIR": str(tmp_path / "pw"),
        "WATCHER_STATE_DIR": str(tmp_path / "state"), "WATCHER_TERMINATION_LOG": "",
    }  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "check"], env={**clean, **variables, **overrides},
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    effective: dict[str, Any] = json.loads(result.stdout)
    assert effective["settings"]["gpu"] == variables["WATCHER_GPU"]
    assert effective["warnings"] == []
