"""The parts of a Pod spec the kubelet model reads, and the rules it applies to exit codes.

Read from a real Pod spec (a dict, as in the manifests): `restartPolicy`, the init
containers (native sidecars have `restartPolicy: Always`), the containers, their
`command`/`args`, plain `env` values, `restartPolicyRules`, and an `httpGet` startupProbe.
The decisions follow docs/kubelet.md: the first rule whose exit
codes match decides; without one, the container's then the Pod's `restartPolicy`.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

RESTART_ALL = "RestartAllContainers"
RESTART = "Restart"


@dataclass(frozen=True)
class Probe:
    port: int
    path: str = "/"
    period: float = 1.0
    failure_threshold: int = 30


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    rules: tuple[Mapping[str, Any], ...] = ()
    restart_policy: str | None = None
    """The container's own restartPolicy: `Always` makes an init container a sidecar."""
    startup_probe: Probe | None = None
    init: bool = False

    @property
    def sidecar(self) -> bool:
        return self.init and self.restart_policy == "Always"

    def first_rule(self, code: int) -> Mapping[str, Any] | None:
        """The first restartPolicyRule whose exitCodes match ``code``."""
        for rule in self.rules:
            codes = rule.get("exitCodes") or {}
            values = codes.get("values") or []
            operator = codes.get("operator")
            if (operator == "In" and code in values) or (
                operator == "NotIn" and code not in values
            ):
                return rule
        return None

    def restarts_all_on(self, code: int) -> bool:
        rule = self.first_rule(code)
        return rule is not None and rule.get("action") == RESTART_ALL

    def should_restart(self, code: int, pod_policy: str) -> bool:
        """`ContainerShouldRestart`: the rule, else the container's, else the Pod's policy."""
        rule = self.first_rule(code)
        if rule is not None:
            return rule.get("action") in (RESTART, RESTART_ALL)
        policy = self.restart_policy or pod_policy
        return policy == "Always" or (policy == "OnFailure" and code != 0)


@dataclass(frozen=True)
class PodSpec:
    restart_policy: str
    init_containers: tuple[ContainerSpec, ...]
    containers: tuple[ContainerSpec, ...]
    grace: float = 30.0
    """terminationGracePeriodSeconds: for Pod termination, not for a restart-all (2 s)."""

    @property
    def all(self) -> tuple[ContainerSpec, ...]:
        return (*self.init_containers, *self.containers)


def container(raw: Mapping[str, Any], *, init: bool) -> ContainerSpec:
    probe = None
    startup = (raw.get("startupProbe") or {}).get("httpGet")
    if startup is not None:
        settings = raw["startupProbe"]
        probe = Probe(
            int(startup["port"]),
            startup.get("path", "/"),
            float(settings.get("periodSeconds", 10)),
            int(settings.get("failureThreshold", 3)),
        )
    env = {item["name"]: str(item["value"]) for item in raw.get("env", ()) if "value" in item}
    return ContainerSpec(
        name=raw["name"],
        argv=(*raw.get("command", ()), *raw.get("args", ())),
        env=env,
        rules=tuple(raw.get("restartPolicyRules") or ()),
        restart_policy=raw.get("restartPolicy"),
        startup_probe=probe,
        init=init,
    )


def pod_spec(spec: Mapping[str, Any]) -> PodSpec:
    """The model's view of a Pod's `spec`."""
    inits: Sequence[Mapping[str, Any]] = spec.get("initContainers") or ()
    return PodSpec(
        restart_policy=spec.get("restartPolicy", "Always"),
        init_containers=tuple(container(raw, init=True) for raw in inits),
        containers=tuple(container(raw, init=False) for raw in spec["containers"]),
        grace=float(spec.get("terminationGracePeriodSeconds", 30)),
    )
