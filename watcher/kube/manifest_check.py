"""`pod-watcher check --pod FILE...`: the Pod checks on manifests, before anything runs.

Every Pod spec in the files is checked, wherever it sits: a Pod, a Job or CronJob
template, a JobSet's replicated jobs, a Deployment, a Kubeflow PyTorchJob's replica specs.
The watcher's container is found by name; its restart code and launcher directory are
read from its own environment in the manifest.
"""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from watcher.kube.pod_checks import check_pod
from watcher.kube.wiring import WiringProblem

DEFAULT_EXIT_CODE = 88


@dataclass(frozen=True)
class SpecReport:
    where: str
    """`file: Kind/name at path`."""
    problems: list[WiringProblem]


class ManifestError(Exception):
    """A file that cannot be read or parsed."""


def pod_specs(node: Any, path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every mapping that is a Pod spec (it has a list of containers), with where it is."""
    if isinstance(node, Mapping):
        if isinstance(node.get("containers"), list):
            yield path or ".", node
            return
        for key, value in node.items():
            yield from pod_specs(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from pod_specs(item, f"{path}[{index}]")


def check_files(files: Sequence[Path], container: str) -> list[SpecReport]:
    reports = []
    for file in files:
        for document in _documents(file):
            kind = (
                f"{document.get('kind', '?')}/{(document.get('metadata') or {}).get('name', '?')}"
            )
            for path, spec in pod_specs(document):
                reports.append(SpecReport(f"{file}: {kind} at {path}", _check(spec, container)))
    return reports


def _check(spec: Mapping[str, Any], container: str) -> list[WiringProblem]:
    every = [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]
    watcher: Mapping[str, Any] = next((c for c in every if c.get("name") == container), {})
    env = {e.get("name"): e.get("value") for e in watcher.get("env") or () if "value" in e}
    try:
        code = int(env.get("WATCHER_RESTART_EXIT_CODE") or DEFAULT_EXIT_CODE)
    except ValueError:
        code = DEFAULT_EXIT_CODE
    return check_pod(spec, container, code, env.get("WATCHER_LAUNCHER_DIR") or None)


def _documents(file: Path) -> list[Mapping[str, Any]]:
    try:
        text = file.read_text("utf-8")
        found = [d for d in yaml.safe_load_all(text) if d is not None]
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{file}: cannot read it: {exc}") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"{file}: not valid YAML: {exc}") from None
    if not all(isinstance(d, Mapping) for d in found):
        raise ManifestError(f"{file}: every document must be a mapping (a Kubernetes object)")
    return found
