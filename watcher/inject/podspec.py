"""Add pod-watcher to one Pod spec, or take it out: pure functions over plain data.

Inject first takes out what an earlier run added, then adds the pieces afresh, so a second
run changes nothing and a run with other options replaces the first one's pieces.
"""

import copy
from collections.abc import Sequence

from watcher.inject.gpu import WIRINGS, GpuContext
from watcher.inject.pieces import (
    RENAMED,
    WATCHER,
    InjectError,
    Obj,
    Pieces,
    base_volume_names,
    env_value,
    our_pod_fields,
)
from watcher.kube.pod_checks import LAUNCH

DEFAULT_LAUNCHER_DIR = "/pod-watcher"
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
AUTOMOUNTED = "kube-api-access-"
"""The prefix of the token volume the ServiceAccount admission plugin adds."""


def uninject_spec(spec: Obj, fields: Obj | None = None) -> Obj:
    """``spec`` without the watcher, its volumes and mounts, the launcher in front of the
    commands, and the Pod ``fields`` that still have inject's values (default: those of
    the default options)."""
    spec = copy.deepcopy(spec)
    inits = spec.get("initContainers") or []
    ours = next((c for c in inits if c.get("name") == WATCHER), None)
    if ours is None:
        return spec
    _set_list(spec, "initContainers", [c for c in inits if c is not ours])
    launcher = env_value(ours, "WATCHER_LAUNCHER_DIR") or DEFAULT_LAUNCHER_DIR
    volumes = {
        str(m.get("name")) for m in ours.get("volumeMounts") or () if _ours(str(m.get("name")))
    }
    for container in [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]:
        _unlaunch(container, launcher)
        mounts = container.get("volumeMounts") or []
        _set_list(container, "volumeMounts", [m for m in mounts if m.get("name") not in volumes])
    _set_list(spec, "volumes", [v for v in spec.get("volumes") or () if v["name"] not in volumes])
    for key, value in (our_pod_fields(WATCHER) if fields is None else fields).items():
        if key in spec and spec[key] == value:
            del spec[key]
    for wiring in WIRINGS.values():
        wiring.remove(spec)
    return spec


def inject_spec(
    spec: Obj,
    trainer_names: Sequence[str],
    pieces: Pieces,
    *,
    gpu: str,
    context: GpuContext,
    runtime: bool = False,
) -> tuple[Obj, list[str]]:
    """``spec`` with the watcher first among its init containers, its volumes, the
    launcher in front of the trainer's command and the Pod fields; notes for the user.
    In a Trainer ``runtime`` the trainer may have no command (its TrainJobs bring one)."""
    spec = uninject_spec(spec, pieces.pod)
    trainer = _trainer(spec, trainer_names, runtime)
    names = _volume_names(spec, [v["name"] for v in pieces.volumes])
    sidecar = copy.deepcopy(pieces.sidecar)
    for mount in sidecar.get("volumeMounts") or ():
        mount["name"] = names[mount["name"]]
    volumes = [{**copy.deepcopy(v), "name": names[v["name"]]} for v in pieces.volumes]
    spec["initContainers"] = [sidecar, *(spec.get("initContainers") or ())]
    spec = _before(spec, "initContainers", "containers")
    trainer = next(c for c in spec["containers"] if c.get("name") == trainer["name"])
    spec["volumes"] = [*(spec.get("volumes") or ()), *volumes]
    _launch(trainer, pieces, names)
    notes = _pod_fields(spec, pieces.pod)
    notes += WIRINGS[gpu].apply(spec, sidecar, context)
    return spec, notes


def choose_trainer(spec: Obj, wanted: Sequence[str], annotations: Obj) -> str:
    """The trainer's container name: the first of ``wanted`` present, else the Pod's
    default container (annotation), else the only container."""
    names = [str(c.get("name")) for c in spec.get("containers") or ()]
    if wanted:
        found = next((name for name in wanted if name in names), None)
        if found is None:
            raise InjectError(
                f"no container named {' or '.join(map(repr, wanted))} (containers: "
                f"{', '.join(names) or 'none'}); name the trainer with --container"
            )
        return found
    default = annotations.get(DEFAULT_CONTAINER)
    if default in names:
        return str(default)
    if len(names) == 1:
        return names[0]
    raise InjectError(
        f"{len(names)} containers ({', '.join(names) or 'none'}): name the trainer, the one "
        "to run through the launcher, with --container"
    )


def launched(command: Sequence[str], launcher_dir: str = DEFAULT_LAUNCHER_DIR) -> bool:
    return list(command[:3]) == ["python3", f"{launcher_dir}/{LAUNCH}", "--"]


def _trainer(spec: Obj, names: Sequence[str], runtime: bool) -> Obj:
    trainer: Obj = next(c for c in spec["containers"] if c.get("name") in names)
    if not trainer.get("command") and not runtime:
        raise InjectError(
            f"container {trainer.get('name')!r} has no command: its image's entrypoint runs, "
            "which inject cannot see, so the launcher cannot go in front of it; write the "
            "entrypoint as command: (keeping args:) and inject again"
        )
    return trainer


def _launch(trainer: Obj, pieces: Pieces, names: dict[str, str]) -> None:
    if trainer.get("command") and not launched(trainer["command"], pieces.launcher_dir):
        trainer["command"] = [*pieces.command, *trainer["command"]]
    mounts = trainer.get("volumeMounts") or []
    taken = [m for m in mounts if _overlaps(str(m.get("mountPath", "")), pieces.launcher_dir)]
    if taken:
        raise InjectError(
            f"container {trainer.get('name')!r} mounts {taken[0].get('name')!r} at "
            f"{taken[0].get('mountPath')}, where the launcher's volume goes "
            f"({pieces.launcher_dir}); move it"
        )
    mount = {**pieces.mount, "name": names[pieces.mount["name"]]}
    trainer["volumeMounts"] = [mount, *mounts]


def _pod_fields(spec: Obj, fields: Obj) -> list[str]:
    notes = []
    for key, value in fields.items():
        current = spec.get(key)
        if current is None or (key == "serviceAccountName" and current == "default"):
            spec[key] = value
        elif current != value:
            notes.append(f"keeps {key}: {current} (inject would set {value})")
    if fields.get("automountServiceAccountToken") is False:
        _drop_automounted_token(spec)
    return notes


def _drop_automounted_token(spec: Obj) -> None:
    """What the API server's ServiceAccount admission added before a webhook sees the Pod
    (a `kube-api-access-xxxxx` volume in every container): gone with the automount off,
    so only the watcher gets a token."""
    if spec.get("automountServiceAccountToken") is not False:
        return
    added = {
        v["name"]
        for v in spec.get("volumes") or ()
        if str(v.get("name", "")).startswith(AUTOMOUNTED)
        and any("serviceAccountToken" in s for s in (v.get("projected") or {}).get("sources", ()))
    }
    if not added:
        return
    _set_list(spec, "volumes", [v for v in spec["volumes"] if v["name"] not in added])
    for container in [*(spec.get("initContainers") or ()), *(spec.get("containers") or ())]:
        mounts = container.get("volumeMounts") or []
        _set_list(container, "volumeMounts", [m for m in mounts if m.get("name") not in added])


def _volume_names(spec: Obj, wanted: Sequence[str]) -> dict[str, str]:
    """Our volume names, each prefixed where the Pod has a volume of that name."""
    taken = {str(v.get("name")) for v in spec.get("volumes") or ()}
    names = {}
    for name in wanted:
        chosen = name if name not in taken else RENAMED + name
        if chosen in taken:
            raise InjectError(f"the Pod already has volumes {name!r} and {chosen!r}; rename one")
        names[name] = chosen
    return names


def _ours(volume: str) -> bool:
    bases = base_volume_names()
    return volume in bases or (volume.startswith(RENAMED) and volume[len(RENAMED) :] in bases)


def _unlaunch(container: Obj, launcher_dir: str) -> None:
    command = container.get("command") or []
    if launched(command, launcher_dir):
        container["command"] = command[3:]


def _overlaps(mount_path: str, path: str) -> bool:
    a, b = mount_path.rstrip("/") + "/", path.rstrip("/") + "/"
    return a.startswith(b) or b.startswith(a)


def _before(spec: Obj, key: str, anchor: str) -> Obj:
    """The same mapping with ``key`` just before ``anchor``: init containers read first."""
    order = [k for k in spec if k != key]
    order.insert(order.index(anchor) if anchor in order else len(order), key)
    return {k: spec[k] for k in order}


def _set_list(holder: Obj, key: str, items: list[Obj]) -> None:
    if items:
        holder[key] = items
    else:
        holder.pop(key, None)
