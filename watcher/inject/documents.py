"""Inject or uninject every document of a manifest stream; the rest passes through."""

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field

from watcher.inject.gpu import WIRINGS, GpuContext
from watcher.inject.kinds import RUNTIMES, TRAINER_GROUP, Site, group, sites
from watcher.inject.pieces import WATCHER, InjectError, Obj, Options, Pieces, env_value, pieces
from watcher.inject.podspec import choose_trainer, inject_spec, launched, uninject_spec
from watcher.kube.manifest_check import DEFAULT_EXIT_CODE, pod_specs
from watcher.kube.pod_checks import check_pod

RBAC_HINT = (
    "needs the Role of manifests/rbac.yaml (events create/patch, pods get/patch, "
    "pods/eviction create) bound to it in the Pod's namespace; without it the watcher "
    "holds instead of evicting (or run inject with --api none)"
)


@dataclass
class Result:
    documents: list[Obj]
    notes: list[str] = field(default_factory=list)
    accounts: set[str] = field(default_factory=set)
    """The service accounts the injected Pods run as."""

    def hints(self) -> list[str]:
        return [f"service account {name!r} {RBAC_HINT}" for name in sorted(self.accounts)]


def inject_documents(documents: Iterable[Obj], options: Options) -> Result:
    if options.gpu not in WIRINGS:
        raise InjectError(f"--gpu {options.gpu}: not one of {', '.join(WIRINGS)}")
    built = pieces(options)
    docs = [copy.deepcopy(d) for d in documents]
    result = Result(docs)
    runtimes = set()
    for document in _flat(docs):
        runtimes |= _inject_document(document, options, built, result)
    for document in _flat(docs):
        if document.get("kind") == "TrainJob" and group(document) == TRAINER_GROUP:
            _train_job(document, built, runtimes, result)
        if document.get("kind") == "ServiceAccount":  # brought along: no hint needed
            result.accounts.discard(str((document.get("metadata") or {}).get("name")))
    return result


def uninject_documents(documents: Iterable[Obj], options: Options) -> Result:
    """Everything inject added with the same ``options`` taken out again."""
    fields = pieces(options).pod
    docs = [copy.deepcopy(d) for d in documents]
    for document in _flat(docs):
        if document.get("kind") == "TrainJob" and group(document) == TRAINER_GROUP:
            trainer = (document.get("spec") or {}).get("trainer") or {}
            if launched(trainer.get("command") or ()):
                trainer["command"] = trainer["command"][3:]
            continue
        for site in _sites(document, Result([])):
            site.template["spec"] = uninject_spec(site.template["spec"], fields)
    return Result(docs)


def name_of(document: Obj) -> str:
    metadata = document.get("metadata") or {}
    generated = f"{metadata['generateName']}*" if metadata.get("generateName") else "?"
    return f"{document.get('kind', '?')}/{metadata.get('name') or generated}"


def _flat(documents: list[Obj]) -> Iterable[Obj]:
    for document in documents:
        if document.get("kind") == "List" and isinstance(document.get("items"), list):
            yield from _flat([i for i in document["items"] if isinstance(i, dict)])
        else:
            yield document


def _sites(document: Obj, result: Result) -> list[Site]:
    try:
        found = sites(document)
        listed = list(found) if found is not None else None
    except InjectError as exc:
        raise InjectError(f"{name_of(document)}: {exc}") from None
    if listed is None:
        if any(True for _ in pod_specs(document)):
            result.notes.append(f"{name_of(document)}: not a kind inject knows; left unchanged")
        return []
    return listed


def _inject_document(document: Obj, options: Options, built: Pieces, result: Result) -> set[str]:
    """Inject every Pod template of the document; the runtimes among them, by kind/name."""
    context = GpuContext(options.dcgm_exporter_url)
    injected = set()
    for site in _sites(document, result):
        where = f"{name_of(document)} at {site.where}"
        annotations = (site.template.get("metadata") or {}).get("annotations") or {}
        try:
            name = choose_trainer(site.template["spec"], options.containers or site.trainers,
                                  annotations)  # fmt: skip
            spec, notes = inject_spec(
                site.template["spec"], [name], built,
                gpu=options.gpu, context=context, runtime=site.runtime,
            )  # fmt: skip
        except InjectError as exc:
            raise InjectError(f"{where}: {exc}") from None
        _check(spec, where)
        site.template["spec"] = spec
        result.notes += [f"{where}: {note}" for note in notes]
        if options.api != "none":
            result.accounts.add(str(spec.get("serviceAccountName", "default")))
        injected.add(name_of(document))
    return injected


def _check(spec: Obj, where: str) -> None:
    """What inject writes passes `pod-watcher check --pod`: else it writes nothing."""
    watcher = spec["initContainers"][0]
    code = int(env_value(watcher, "WATCHER_RESTART_EXIT_CODE") or DEFAULT_EXIT_CODE)
    problems = check_pod(spec, WATCHER, code, env_value(watcher, "WATCHER_LAUNCHER_DIR"))
    if problems:
        found = "; ".join(f"{p.reason}: {p.message}" for p in problems)
        raise InjectError(f"{where}: still not wired after inject: {found}")


def _train_job(document: Obj, built: Pieces, runtimes: set[str], result: Result) -> None:
    spec = document.setdefault("spec", {})
    ref = spec.get("runtimeRef") or {}
    runtime = f"{ref.get('kind') or RUNTIMES[1]}/{ref.get('name', '?')}"
    trainer = spec.get("trainer") or {}
    command = trainer.get("command")
    if command and not launched(command, built.launcher_dir):
        trainer["command"] = [*built.command, *command]
    if runtime in runtimes:
        return
    what = "runs through the launcher" if command else "is the runtime's"
    result.notes.append(
        f"{name_of(document)}: its trainer's command {what}; the sidecar can only come from "
        f"its runtime {runtime}: inject that too (pod-watcher inject runtime.yaml)"
    )
