"""The restart rule's API shape (the `onExit:` trap) and `check_wiring` on small specs."""

from typing import Any

import kubernetes_validate
import pytest

from tests.kube.manifests import VERSIONS, Obj
from watcher.kube.wiring import check_wiring

RESTART_ALL = {"action": "RestartAllContainers", "exitCodes": {"operator": "In", "values": [88]}}


def _pod(rules: list[Obj], *, sidecar: bool = True, policy: str | None = "Always") -> Obj:
    watcher: Obj = {"name": "pod-watcher", "image": "pod-watcher:dev"}
    if policy is not None:
        watcher["restartPolicy"] = policy
    if rules:
        watcher["restartPolicyRules"] = rules
    trainer = {"name": "trainer", "image": "my-trainer:latest"}
    spec: Obj = {"restartPolicy": "Never", "containers": [trainer]}
    if sidecar:
        spec["initContainers"] = [watcher]
    else:
        spec["containers"].append(watcher)
    return spec


def _reasons(spec: Obj, code: int = 88) -> list[str]:
    return [problem.reason for problem in check_wiring(spec, "pod-watcher", code)]


def _rule(action: str, operator: str, *values: int) -> Obj:
    return {"action": action, "exitCodes": {"operator": operator, "values": list(values)}}


# -- the API shape -----------------------------------------------------------------------


def _as_pod(spec: Obj) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "trainer"}, "spec": spec}


@pytest.mark.parametrize("version", VERSIONS)
def test_the_documented_rule_validates(version: str) -> None:
    kubernetes_validate.validate(_as_pod(_pod([RESTART_ALL])), version, strict=True)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_kep_and_blog_onexit_nesting_is_rejected(version: str) -> None:
    """The KEP and the v1.35 blog nest exitCodes under `onExit:`, which is no API field."""
    codes = {"operator": "In", "values": [88]}
    trap = {"action": "RestartAllContainers", "onExit": {"exitCodes": codes}}
    pod = _as_pod(_pod([trap]))
    with pytest.raises(kubernetes_validate.ValidationError, match="onExit"):
        kubernetes_validate.validate(pod, version, strict=True)
    # Without strict validation the unknown field slips through (an API server without
    # strict field validation drops it, then refuses the rule: exitCodes is required).
    kubernetes_validate.validate(pod, version, strict=False)
    # check_wiring sees a rule without exitCodes: it matches nothing.
    assert _reasons(pod["spec"]) == ["RestartRuleMissing"]


# -- check_wiring ------------------------------------------------------------------------


def test_a_correct_sidecar_has_no_problem() -> None:
    assert check_wiring(_pod([RESTART_ALL]), "pod-watcher", 88) == []


def test_another_restart_code() -> None:
    spec = _pod([_rule("RestartAllContainers", "In", 42)])
    assert _reasons(spec, 42) == []
    assert _reasons(spec, 88) == ["RestartRuleMissing"]


def test_a_container_of_another_name() -> None:
    problems = check_wiring(_pod([RESTART_ALL]), "watcher", 88)
    assert [p.reason for p in problems] == ["WatcherContainerNotFound"]
    assert "'watcher'" in problems[0].message


def test_a_regular_container() -> None:
    assert _reasons(_pod([RESTART_ALL], sidecar=False)) == ["WatcherNotASidecar"]
    assert _reasons(_pod([], sidecar=False)) == ["WatcherNotASidecar", "RestartRuleMissing"]


@pytest.mark.parametrize("policy", [None, "Never", "OnFailure"])
def test_an_init_container_without_restart_policy_always(policy: str | None) -> None:
    assert _reasons(_pod([RESTART_ALL], policy=policy)) == ["WatcherNotASidecar"]


def test_no_rules() -> None:
    problems = check_wiring(_pod([]), "pod-watcher", 88)
    assert [p.reason for p in problems] == ["RestartRuleMissing"]
    assert "exit 88 would restart only the watcher" in problems[0].message


def test_a_rule_for_another_code() -> None:
    assert _reasons(_pod([_rule("RestartAllContainers", "In", 42, 43)])) == ["RestartRuleMissing"]


def test_not_in_that_matches_our_code() -> None:
    problems = check_wiring(_pod([_rule("RestartAllContainers", "NotIn", 0)]), "pod-watcher", 88)
    assert [p.reason for p in problems] == ["RestartRuleNotIn"]
    assert "operator In with [88]" in problems[0].message


def test_not_in_that_excludes_our_code_matches_nothing() -> None:
    reasons = _reasons(_pod([_rule("RestartAllContainers", "NotIn", 88)]))
    assert reasons == ["RestartRuleMissing", "RestartRuleTooBroad"]


def test_a_rule_that_also_takes_crash_config_or_kill_codes_is_too_broad() -> None:
    problems = check_wiring(
        _pod([_rule("RestartAllContainers", "In", 2, 88, 137)]), "pod-watcher", 88
    )
    assert [p.reason for p in problems] == ["RestartRuleTooBroad"]
    assert "[2, 137]" in problems[0].message


def test_a_rule_without_exit_codes_hints_at_the_on_exit_trap() -> None:
    spec = _pod([{"action": "RestartAllContainers"}])
    (problem,) = check_wiring(spec, "pod-watcher", 88)
    assert problem.reason == "RestartRuleMissing"
    assert "onExit" in problem.message


def test_the_wrong_action() -> None:
    problems = check_wiring(_pod([_rule("Restart", "In", 88)]), "pod-watcher", 88)
    assert [p.reason for p in problems] == ["RestartRuleWrongAction"]
    assert "'Restart'" in problems[0].message


def test_the_first_matching_rule_wins() -> None:
    shadowed = [_rule("Restart", "In", 88), RESTART_ALL]
    assert _reasons(_pod(shadowed)) == ["RestartRuleWrongAction"]
    assert _reasons(_pod([RESTART_ALL, _rule("Restart", "In", 88)])) == []
    # Rules for other codes before ours do not matter.
    assert _reasons(_pod([_rule("Restart", "In", 1, 2), RESTART_ALL])) == []


def test_not_a_sidecar_and_badly_wired_reports_both() -> None:
    spec = _pod([_rule("Restart", "In", 88)], policy="OnFailure")
    assert _reasons(spec) == ["WatcherNotASidecar", "RestartRuleWrongAction"]


def test_a_rule_with_an_unknown_operator_is_skipped() -> None:
    broken = {"action": "RestartAllContainers", "exitCodes": {"operator": "Is", "values": [88]}}
    assert _reasons(_pod([broken])) == ["RestartRuleMissing"]
    assert _reasons(_pod([broken, RESTART_ALL])) == []
