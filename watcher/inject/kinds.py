"""Where each kind keeps its Pod templates, and which container in them is the trainer.

From the projects' own API types and docs:
- Pod, Job (`spec.template`), CronJob (`spec.jobTemplate.spec.template`): any container.
- JobSet (jobset.x-k8s.io): every `spec.replicatedJobs[].template.spec.template`.
- Kubeflow PyTorchJob (kubeflow.org/v1, training-operator): every
  `spec.pytorchReplicaSpecs.<Master|Worker>.template`; the operator requires the training
  container to be named `pytorch`.
- Kubeflow Trainer v2 (trainer.kubeflow.org): a TrainingRuntime or ClusterTrainingRuntime
  holds a JobSet template; the trainer is the container `node` of the replicated job labelled
  `trainer.kubeflow.org/trainjob-ancestor-step: trainer` (or named `node`). A TrainJob has no
  Pod template, and its `runtimePatches` / `podTemplateOverrides` can add neither a container
  nor a command: the sidecar goes into the runtime, and the TrainJob's own
  `spec.trainer.command`, which replaces the runtime's, gets the launcher in front.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from watcher.inject.pieces import InjectError, Obj

TRAINER_GROUP = "trainer.kubeflow.org"
RUNTIMES = ("TrainingRuntime", "ClusterTrainingRuntime")
ANCESTOR = "trainer.kubeflow.org/trainjob-ancestor-step"


@dataclass(frozen=True)
class Site:
    """One Pod template in a document."""

    where: str
    template: Obj
    """A mapping with `spec` (a Pod spec) and perhaps `metadata`: changed in place."""
    trainers: tuple[str, ...] = ()
    """The trainer's container names this kind implies; () lets the shape decide."""
    runtime: bool = False
    """A Kubeflow Trainer runtime: the trainer's command may come from the TrainJob."""


def group(document: Obj) -> str:
    api_version = str(document.get("apiVersion", ""))
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def sites(document: Obj) -> Iterator[Site] | None:
    """The document's Pod templates, or None for a kind inject does not handle."""
    found = KINDS.get((str(document.get("kind")), group(document)))
    spec = document.get("spec")
    return None if found is None else found(document, spec if isinstance(spec, dict) else {})


def _pod(document: Obj, spec: Obj) -> Iterator[Site]:
    yield Site("spec", _at(document, "spec"))


def _job(document: Obj, spec: Obj) -> Iterator[Site]:
    yield Site("spec.template.spec", _at(spec, "template", "spec"))


def _cron_job(document: Obj, spec: Obj) -> Iterator[Site]:
    where = "spec.jobTemplate.spec.template.spec"
    yield Site(where, _at(spec, "jobTemplate", "spec", "template", "spec", where=where))


def _jobset(document: Obj, spec: Obj) -> Iterator[Site]:
    return _replicated(spec, "spec", lambda job: True, ())


def _runtime(document: Obj, spec: Obj) -> Iterator[Site]:
    jobset = _at(spec, "template", "spec")["spec"] if "template" in spec else {}
    return _replicated(jobset, "spec.template.spec", _is_trainer_job, ("node",), True)


def _replicated(
    jobset: Obj,
    prefix: str,
    chosen: Callable[[Obj], bool],
    trainers: tuple[str, ...],
    runtime: bool = False,
) -> Iterator[Site]:
    jobs = jobset.get("replicatedJobs")
    if not isinstance(jobs, list) or not jobs:
        raise InjectError(f"{prefix}.replicatedJobs: missing or empty")
    for index, job in enumerate(jobs):
        if chosen(job):
            where = f"{prefix}.replicatedJobs[{index}].template.spec.template"
            template = _at(job, "template", "spec", "template", "spec", where=where)
            yield Site(f"{where}.spec", template, trainers, runtime)


def _pytorch(spec: Obj) -> Iterator[Site]:
    replicas = spec.get("pytorchReplicaSpecs")
    if not isinstance(replicas, dict) or not replicas:
        raise InjectError("spec.pytorchReplicaSpecs: missing or empty")
    for role, replica in replicas.items():
        where = f"spec.pytorchReplicaSpecs.{role}.template"
        yield Site(f"{where}.spec", _at(replica, "template", "spec", where=where), ("pytorch",))


KINDS: dict[tuple[str, str], Callable[[Obj, Obj], Iterator[Site]]] = {
    ("Pod", ""): _pod,
    ("Job", "batch"): _job,
    ("CronJob", "batch"): _cron_job,
    ("JobSet", "jobset.x-k8s.io"): _jobset,
    ("PyTorchJob", "kubeflow.org"): lambda document, spec: _pytorch(spec),
    **{(kind, TRAINER_GROUP): _runtime for kind in RUNTIMES},
}


def _is_trainer_job(job: Obj) -> bool:
    labels = ((job.get("template") or {}).get("metadata") or {}).get("labels") or {}
    return labels.get(ANCESTOR) == "trainer" or job.get("name") == "node"


def _at(node: Obj, *keys: str, where: str = "") -> Obj:
    """The mapping holding the last key (a Pod template holds `spec`), checked on the way."""
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            raise InjectError(f"{where or '.'.join(keys)}: no Pod template ({key!r} missing)")
        node = child
    if not isinstance(node.get(keys[-1]), dict):
        raise InjectError(f"{where or '.'.join(keys)}: no Pod spec")
    return node
