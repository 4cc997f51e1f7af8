"""One source for the sidecar: manifests/pod.yaml (and the same Pod in job.yaml and
jobset.yaml) is what inject makes of the bare trainer Pod, so the two cannot drift."""

from pathlib import Path

import pytest

from tests.inject.shapes import Obj, inject, keyed, load_all
from tests.kube.manifests import MANIFESTS, WATCHER, container, documents, pod_specs
from watcher.inject.pieces import Options, pieces
from watcher.inject.podspec import uninject_spec
from watcher.inject.yamlio import dump

BARE = Path(__file__).resolve().parent / "bare-pod.yaml"


def test_inject_turns_the_bare_pod_into_pod_yaml() -> None:
    result = inject(str(BARE))
    assert result.returncode == 0, result.stderr
    (made,) = load_all(result.stdout)
    (shipped,) = documents(MANIFESTS / "pod.yaml")
    assert made["metadata"] == shipped["metadata"]
    assert keyed(made["spec"]) == keyed(shipped["spec"])


def test_uninject_turns_pod_yaml_into_the_bare_pod() -> None:
    result = inject("--uninject", str(MANIFESTS / "pod.yaml"))
    assert result.returncode == 0, result.stderr
    assert load_all(result.stdout) == load_all(BARE.read_text("utf-8"))


def test_the_template_s_sidecar_is_pod_yaml_s_watcher() -> None:
    """The same, less what the GPU wiring adds (pod.yaml's trainer requests GPUs)."""
    (shipped,) = documents(MANIFESTS / "pod.yaml")
    watcher = container(shipped["spec"], WATCHER)
    watcher["env"] = [e for e in watcher["env"] if e["name"] != "WATCHER_GPU"]
    assert pieces(Options()).sidecar == watcher


@pytest.mark.parametrize(("where", "spec"), pod_specs(), ids=[w for w, _ in pod_specs()])
def test_every_shipped_pod_is_inject_s_output(where: str, spec: Obj) -> None:
    """job.yaml and jobset.yaml too: take pod-watcher out, inject again, the same Pod."""
    bare = uninject_spec(spec)
    assert "initContainers" not in bare and "serviceAccountName" not in bare
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": bare}
    result = inject(stdin=dump([pod]))
    assert result.returncode == 0, result.stderr
    (made,) = load_all(result.stdout)
    assert keyed(made["spec"]) == keyed(spec)
