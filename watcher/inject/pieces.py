"""The pieces inject adds to a Pod spec: `sidecar.yaml` shaped by the options."""

import copy
import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

import yaml

Obj = dict[str, Any]
ApiAccess = Literal["service-account", "none"]

WATCHER = "pod-watcher"
"""The sidecar's container name: how inject, uninject and the wiring check find it."""
RENAMED = "pod-watcher-"
"""The prefix of a volume name the Pod already uses for a volume of its own."""
CONFIG_VOLUME = "config"
API_VOLUME = "kube-api-access"
DEFAULT_CONFIG_MAP = "pod-watcher-config"


class InjectError(Exception):
    """A manifest inject cannot wire; the message says where and what to do."""


@dataclass(frozen=True)
class Options:
    """What `pod-watcher inject` and the webhook are told; the defaults give pod.yaml."""

    image: str | None = None
    """The watcher's image; None keeps the template's (pod-watcher:dev)."""
    config_map: str | None = DEFAULT_CONFIG_MAP
    """The ConfigMap with `watcher.yaml`; None: no config file."""
    api: ApiAccess = "service-account"
    service_account: str = WATCHER
    gpu: str = "auto"
    dcgm_exporter_url: str | None = None
    containers: tuple[str, ...] = ()
    """The trainer's container name(s), first found wins; () picks by kind and shape."""


@dataclass
class Pieces:
    sidecar: Obj
    volumes: list[Obj]
    command: list[str]
    mount: Obj
    pod: Obj
    notes: list[str] = field(default_factory=list)

    @property
    def launcher_dir(self) -> str:
        return str(self.mount["mountPath"])


@functools.cache
def _template() -> Obj:
    text = resources.files("watcher.inject").joinpath("sidecar.yaml").read_text("utf-8")
    loaded: Obj = yaml.safe_load(text)
    return loaded


def base_volume_names() -> frozenset[str]:
    return frozenset(v["name"] for v in _template()["volumes"])


def our_pod_fields(service_account: str) -> Obj:
    """The Pod fields inject sets, with the service account of the options."""
    return {**_template()["pod"], "serviceAccountName": service_account}


def pieces(options: Options) -> Pieces:
    """The template with the options applied (the GPU wiring comes later, per Pod)."""
    template = copy.deepcopy(_template())
    sidecar: Obj = template["sidecar"]
    built = Pieces(
        sidecar=sidecar,
        volumes=template["volumes"],
        command=template["workload"]["command"],
        mount=template["workload"]["volumeMount"],
        pod=our_pod_fields(options.service_account),
    )
    if options.image:
        sidecar["image"] = options.image
    if options.config_map is None:
        _drop_volume(built, CONFIG_VOLUME)
        _drop_env(sidecar, "WATCHER_CONFIG")
    else:
        _volume(built, CONFIG_VOLUME)["configMap"]["name"] = options.config_map
    if options.api == "none":
        _drop_volume(built, API_VOLUME)
        del built.pod["serviceAccountName"], built.pod["automountServiceAccountToken"]
        sidecar["env"].append({"name": "WATCHER_KUBERNETES", "value": "off"})
    return built


def _volume(built: Pieces, name: str) -> Obj:
    return next(v for v in built.volumes if v["name"] == name)


def _drop_volume(built: Pieces, name: str) -> None:
    built.volumes = [v for v in built.volumes if v["name"] != name]
    mounts = built.sidecar["volumeMounts"]
    built.sidecar["volumeMounts"] = [m for m in mounts if m["name"] != name]


def _drop_env(container: Obj, name: str) -> None:
    container["env"] = [e for e in container["env"] if e["name"] != name]


def env_value(container: Obj, name: str) -> str | None:
    for entry in container.get("env") or ():
        if entry.get("name") == name and "value" in entry:
            return str(entry["value"])
    return None
