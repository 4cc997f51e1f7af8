"""Is this Pod wired so that our exit code restarts every container in place?

Pure functions over a Pod spec as plain data (the API's JSON), so the same checks run
on the live Pod at start-up and on the shipped manifests in the tests.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

RESTART_ALL = "RestartAllContainers"
DANGEROUS = (0, 1, 2, 137, 143)
"""Exit codes that must never restart the whole Pod: a clean stop, a crash, a bad
configuration, SIGKILL (the OOM killer) and SIGTERM (Pod deletion)."""


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
    """Kubernetes evaluates the rules in order; the first that matches a code decides."""
    rules = container_spec.get("restartPolicyRules") or ()
    problems = _own_code(rules, name, exit_code)
    broad = [c for c in DANGEROUS if (r := _first(rules, c)) and r.get("action") == RESTART_ALL]
    if broad and not any(p.reason == "RestartRuleNotIn" for p in problems):
        problems.append(
            WiringProblem(
                "RestartRuleTooBroad",
                f"{name!r} restarts all containers on exit codes {broad} too: a clean stop (0), "
                "a crash (1), a bad configuration (2) or a kill (137, 143) would restart the "
                f"whole Pod, over and over; use operator In with [{exit_code}]",
            )
        )
    return problems


def _own_code(rules: Sequence[Mapping[str, Any]], name: str, exit_code: int) -> list[WiringProblem]:
    rule = _first(rules, exit_code)
    if rule is None:
        shapeless = any("exitCodes" not in r for r in rules)
        hint = " (a rule without exitCodes: the onExit: nesting of the KEP and blog is wrong)"
        return [
            WiringProblem(
                "RestartRuleMissing",
                f"{name!r} has no restartPolicyRules entry {{action: {RESTART_ALL}, exitCodes: "
                f"{{operator: In, values: [{exit_code}]}}}}: exit {exit_code} would restart only "
                f"the watcher{hint if shapeless else ''}",
            )
        ]
    if rule.get("action") != RESTART_ALL:
        return [
            WiringProblem(
                "RestartRuleWrongAction",
                f"the first rule matching exit code {exit_code} on {name!r} has action "
                f"{rule.get('action')!r}, not {RESTART_ALL}",
            )
        ]
    codes = rule.get("exitCodes") or {}
    if codes.get("operator") == "NotIn":
        return [
            WiringProblem(
                "RestartRuleNotIn",
                f"{name!r} restarts all containers on exit codes NotIn {codes.get('values')}: an "
                "OOM kill (137), a crash (1) or a bad config (2) would restart the whole Pod "
                f"too; use operator In with [{exit_code}]",
            )
        ]
    return []


def _first(rules: Sequence[Mapping[str, Any]], code: int) -> Mapping[str, Any] | None:
    for rule in rules:
        codes = rule.get("exitCodes") or {}
        operator, values = codes.get("operator"), codes.get("values") or []
        if (operator == "In" and code in values) or (operator == "NotIn" and code not in values):
            return rule
    return None


def _find(containers: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    return next((c for c in containers if c.get("name") == name), None)
