"""Is this Pod wired so that our exit code restarts every container in place?

Pure functions over a Pod spec as plain data (the API's JSON), so the same checks run
on the live Pod at start-up and on the shipped manifests in the tests.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

RESTART_ALL = "RestartAllContainers"


@dataclass(frozen=True, slots=True)
class WiringProblem:
    """One way the Pod fails to turn our exit code into an in-place restart."""

    reason: str
    """CamelCase, stable: the Event reason and the metric label."""
    message: str


def check_wiring(
    pod_spec: Mapping[str, Any], container: str, exit_code: int
) -> list[WiringProblem]:
    """Problems with ``container`` as the restart trigger in ``pod_spec``; [] if it is right."""
    sidecar = _find(pod_spec.get("initContainers") or (), container)
    if sidecar is None:
        regular = _find(pod_spec.get("containers") or (), container)
        if regular is None:
            return [
                WiringProblem(
                    "WatcherContainerNotFound", f"no container named {container!r} in this Pod"
                )
            ]
        return [
            WiringProblem(
                "WatcherNotASidecar",
                f"{container!r} is a regular container; run it as a native sidecar (an init "
                "container with restartPolicy: Always) so it starts first and restarts on its own",
            ),
            *_rule_problems(regular, container, exit_code),
        ]
    problems = []
    if sidecar.get("restartPolicy") != "Always":
        problems.append(
            WiringProblem(
                "WatcherNotASidecar",
                f"init container {container!r} lacks restartPolicy: Always, so it is not a "
                "native sidecar and the Pod would wait for it to finish",
            )
        )
    return problems + _rule_problems(sidecar, container, exit_code)


def _rule_problems(
    container_spec: Mapping[str, Any], name: str, exit_code: int
) -> list[WiringProblem]:
    """Kubernetes evaluates the rules in order; the first that matches the code decides."""
    for rule in container_spec.get("restartPolicyRules") or ():
        codes = rule.get("exitCodes") or {}
        operator, values = codes.get("operator"), codes.get("values") or []
        matches = (exit_code in values) if operator == "In" else (exit_code not in values)
        if operator not in ("In", "NotIn") or not matches:
            continue
        if rule.get("action") != RESTART_ALL:
            return [
                WiringProblem(
                    "RestartRuleWrongAction",
                    f"the first rule matching exit code {exit_code} on {name!r} has action "
                    f"{rule.get('action')!r}, not {RESTART_ALL}",
                )
            ]
        if operator == "NotIn":
            return [
                WiringProblem(
                    "RestartRuleNotIn",
                    f"{name!r} restarts all containers on exit codes NotIn {values}: an OOM kill "
                    f"(137), a crash (1) or a bad config (2) would restart the whole Pod too; "
                    f"use operator In with [{exit_code}]",
                )
            ]
        return []
    return [
        WiringProblem(
            "RestartRuleMissing",
            f"{name!r} has no restartPolicyRules entry {{action: {RESTART_ALL}, exitCodes: "
            f"{{operator: In, values: [{exit_code}]}}}}: exit {exit_code} would restart only "
            "the watcher",
        )
    ]


def _find(containers: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    return next((c for c in containers if c.get("name") == name), None)
