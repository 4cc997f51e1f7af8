"""manifests/components/pod-watcher, generated from inject's own pieces (watcher/inject/
sidecar.yaml), so the component and inject cannot drift: `test_component.py` holds the files
equal to `render()`. After changing the sidecar: `python -m tests.inject.component`.
"""

import sys
from pathlib import Path
from typing import Any

import yaml

from watcher.inject.pieces import Options, pieces
from watcher.inject.yamlio import dump

COMPONENT = Path(__file__).resolve().parents[2] / "manifests" / "components" / "pod-watcher"
HEADER = "# Generated from watcher/inject/sidecar.yaml by `python -m tests.inject.component`.\n"
SHAPES = {"pod": ("Pod", "", "/spec"), "job": ("Job", "batch", "/spec/template/spec")}

KUSTOMIZATION = """\
# pod-watcher for the Pods and Jobs of your kustomization, without copying YAML:
#
#   components:
#     - <path or URL of pod-watcher>/manifests/components/pod-watcher
#
# Every Pod and Job gets the sidecar (first among the init containers), its restart rule,
# its volumes and the Pod fields; the FIRST container is the trainer: its command gets the
# launcher in front and it mounts the launcher's volume. It must have a `command` and a
# `volumeMounts` list (`volumeMounts: []` will do): kustomize cannot merge into a list that
# is not there, and says "doc is missing path" if one is. The Pods need the ServiceAccount
# and Role of manifests/rbac.yaml and the ConfigMap of manifests/configmap-rules.yaml.
# JobSets, PyTorchJobs and TrainJobs: kustomize cannot merge lists inside custom
# resources, so use `pod-watcher inject` or the webhook for them (docs/inject.md).
"""


def _smp(kind: str, group: str, path: str) -> dict[str, Any]:
    built = pieces(Options())
    spec: dict[str, Any] = {
        **built.pod,
        "initContainers": [built.sidecar],
        "volumes": built.volumes,
    }
    for key in reversed(path.strip("/").split("/")[1:]):
        spec = {key: spec}
    version = f"{group}/v1" if group else "v1"
    return {"apiVersion": version, "kind": kind, "metadata": {"name": "any"}, "spec": spec}


def _trainer_ops(path: str) -> list[dict[str, Any]]:
    built = pieces(Options())
    container = f"{path}/containers/0"
    ops: list[dict[str, Any]] = [
        {"op": "add", "path": f"{container}/command/{i}", "value": word}
        for i, word in enumerate(built.command)
    ]
    ops.append({"op": "add", "path": f"{container}/volumeMounts/0", "value": built.mount})
    return ops


def render() -> dict[str, str]:
    """File name -> text of every file of the component."""
    files: dict[str, str] = {}
    patches = []
    for name, (kind, group, path) in SHAPES.items():
        target = {"group": group, "version": "v1", "kind": kind} if group else {"kind": kind}
        files[f"{name}.yaml"] = HEADER + dump([_smp(kind, group, path)])
        files[f"{name}-trainer.yaml"] = HEADER + dump([_trainer_ops(path)])
        patches += [
            {"path": f"{name}.yaml", "target": target},
            {"path": f"{name}-trainer.yaml", "target": target},
        ]
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1alpha1",
        "kind": "Component",
        "patches": patches,
    }
    files["kustomization.yaml"] = HEADER + KUSTOMIZATION + dump([kustomization])
    return files


def main() -> None:
    COMPONENT.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (COMPONENT / name).write_text(text, "utf-8")
        yaml.safe_load(text)
    print(f"wrote {len(render())} files to {COMPONENT}", file=sys.stderr)


if __name__ == "__main__":
    main()
