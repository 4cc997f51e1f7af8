"""How the watcher sees the trainer's GPUs: one wiring per way the Pod gets them.

A wiring changes the sidecar (and, for wirings to come, the Pod: a shared DRA claim, the
relay's volume) after the rest of the pieces are in, and undoes its Pod-level changes on
uninject (the sidecar itself goes as a whole). Add one by writing a class with `apply` and
`remove` and naming it in WIRINGS; `--gpu` offers every name.
"""

from dataclasses import dataclass
from typing import Any, Protocol

Obj = dict[str, Any]

DEFAULT_DCGM_EXPORTER_URL = "http://$(NODE_IP):9400/metrics"
"""dcgm-exporter on the Pod's node; NODE_IP comes from status.hostIP (set just before)."""
GPU_RESOURCES = ("nvidia.com/gpu",)


@dataclass(frozen=True)
class GpuContext:
    dcgm_exporter_url: str | None = None


class GpuWiring(Protocol):
    help: str

    def apply(self, spec: Obj, sidecar: Obj, context: GpuContext) -> list[str]:
        """Wire the GPUs into ``spec`` (the sidecar is in it already); notes for the user."""
        ...

    def remove(self, spec: Obj) -> None:
        """Undo what `apply` did outside the sidecar."""
        ...


class NoGpu:
    help = "leave GPUs alone: the watcher's WATCHER_GPU=auto finds none and stays quiet"

    def apply(self, spec: Obj, sidecar: Obj, context: GpuContext) -> list[str]:
        return []

    def remove(self, spec: Obj) -> None:
        return None


class Relay:
    """GPUs from the device plugin belong to the container that requests them, the
    trainer: the launcher, which runs there, relays their readings to the watcher. What
    manifests/pod.yaml ships."""

    help = (
        "the trainer requests nvidia.com/gpu from the device plugin: the launcher relays "
        "their readings to the watcher (WATCHER_GPU=relay)"
    )

    def apply(self, spec: Obj, sidecar: Obj, context: GpuContext) -> list[str]:
        env = sidecar.setdefault("env", [])
        after = next(
            (i + 1 for i, e in enumerate(env) if e.get("name") == "WATCHER_LAUNCHER_DIR"),
            len(env),
        )
        env.insert(after, {"name": "WATCHER_GPU", "value": "relay"})
        if not any(_requests_gpu(c) for c in spec.get("containers") or ()):
            return ["no container requests nvidia.com/gpu: is --gpu relay right?"]
        return []

    def remove(self, spec: Obj) -> None:
        return None


class Dcgm:
    """The trainer's GPUs read from dcgm-exporter on the node, kept to this Pod's GPUs by
    their UUIDs (from the relay) or the exporter's pod label."""

    help = "the watcher reads dcgm-exporter on the node (WATCHER_GPU=dcgm, --dcgm-exporter-url)"

    def apply(self, spec: Obj, sidecar: Obj, context: GpuContext) -> list[str]:
        url = context.dcgm_exporter_url or DEFAULT_DCGM_EXPORTER_URL
        env = sidecar.setdefault("env", [])
        if "$(NODE_IP)" in url:
            node_ip = {"fieldRef": {"fieldPath": "status.hostIP"}}
            env.append({"name": "NODE_IP", "valueFrom": node_ip})
        env += [
            {"name": "WATCHER_GPU", "value": "dcgm"},
            {"name": "WATCHER_DCGM_EXPORTER_URL", "value": url},
        ]
        if not any(_requests_gpu(c) for c in spec.get("containers") or ()):
            return ["no container requests nvidia.com/gpu: is --gpu dcgm right?"]
        return []

    def remove(self, spec: Obj) -> None:
        return None


class Auto:
    """The relay when a container requests nvidia.com/gpu, nothing otherwise."""

    help = "relay when a container requests nvidia.com/gpu, else none (the default)"

    def apply(self, spec: Obj, sidecar: Obj, context: GpuContext) -> list[str]:
        if any(_requests_gpu(c) for c in spec.get("containers") or ()):
            return Relay().apply(spec, sidecar, context)
        return []

    def remove(self, spec: Obj) -> None:
        return None


def _requests_gpu(container: Obj) -> bool:
    resources = container.get("resources") or {}
    wanted = {**(resources.get("requests") or {}), **(resources.get("limits") or {})}
    return any(name in wanted for name in GPU_RESOURCES)


WIRINGS: dict[str, GpuWiring] = {
    "auto": Auto(),
    "relay": Relay(),
    "dcgm": Dcgm(),
    "none": NoGpu(),
}
