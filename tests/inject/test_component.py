"""manifests/components/pod-watcher: generated from inject's pieces, and built with a real
kustomize (`kubectl kustomize`, or `kustomize`) into what inject makes of the same Pods.

kustomize is neither a Debian package nor on PyPI for this Python, so `.ci/run` cannot
install it: the build tests run where one is on PATH (kubectl ships it) and skip elsewhere.
"""

import os
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest

from tests.inject.component import COMPONENT, render
from tests.inject.shapes import Obj, check_pod, inject, keyed, load_all, upstream
from watcher.inject.yamlio import dump

BARE = Path(__file__).resolve().parent / "bare-pod.yaml"


def test_the_files_are_generated_from_the_template() -> None:
    """After a change to watcher/inject/sidecar.yaml: python -m tests.inject.component."""
    files = {path.name: path.read_text("utf-8") for path in COMPONENT.iterdir()}
    assert files == render()


def _kustomize() -> list[str] | None:
    if found := shutil.which("kustomize"):
        return [found, "build"]
    if found := shutil.which("kubectl"):
        return [found, "kustomize"]
    return None


KUSTOMIZE = _kustomize()
needs_kustomize = pytest.mark.skipif(KUSTOMIZE is None, reason="no kustomize or kubectl")


def _build(folder: Path, resources: dict[str, list[Obj]]) -> subprocess.CompletedProcess[str]:
    assert KUSTOMIZE is not None
    for name, documents in resources.items():
        (folder / name).write_text(dump(documents), "utf-8")
    component = os.path.relpath(COMPONENT, folder)
    (folder / "kustomization.yaml").write_text(
        dump([{"resources": list(resources), "components": [component]}]), "utf-8"
    )
    return subprocess.run(
        [*KUSTOMIZE, str(folder)], capture_output=True, text=True, timeout=120, check=False
    )


def _job() -> Obj:
    (job,) = load_all(upstream("k8s-job-pi.yaml").read_text("utf-8"))
    job["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = []
    return job


def _spec(obj: Obj) -> Obj:
    return dict(obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"])


@needs_kustomize
def test_kustomize_makes_what_inject_makes(tmp_path: Path) -> None:
    bare = load_all(BARE.read_text("utf-8"))
    built = _build(tmp_path, {"pod.yaml": bare, "job.yaml": [_job()]})
    assert built.returncode == 0, built.stderr
    made = {obj["kind"]: obj for obj in load_all(built.stdout)}
    # the component is static: it wires no GPUs, WATCHER_GPU=auto finds the relay itself
    injected = inject("--gpu", "none", stdin=dump([*bare, _job()]))
    assert injected.returncode == 0, injected.stderr
    expected = {obj["kind"]: obj for obj in load_all(injected.stdout)}
    assert set(made) == {"Pod", "Job"}
    for kind, obj in made.items():
        assert keyed(_spec(obj)) == keyed(_spec(expected[kind])), kind
        for version in ("1.35.0", "1.36.0"):
            kubernetes_validate.validate(obj, version, strict=True)
    (tmp_path / "out.yaml").write_text(built.stdout, "utf-8")
    result = check_pod(tmp_path / "out.yaml")
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip() == "2 of 2 Pod specs are wired for in-place restarts"


@needs_kustomize
def test_a_trainer_without_volume_mounts_fails_the_build(tmp_path: Path) -> None:
    """kustomize cannot add to a list that is not there; it says so, and builds nothing."""
    (job,) = load_all(upstream("k8s-job-pi.yaml").read_text("utf-8"))
    built = _build(tmp_path, {"job.yaml": [job]})
    assert built.returncode != 0
    assert "doc is missing path" in built.stderr
    assert "/spec/template/spec/containers/0/volumeMounts/0" in built.stderr
