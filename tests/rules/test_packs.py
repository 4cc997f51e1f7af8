"""Built-in packs load, and the effective rule set honours selection, disabling and overrides."""

import pytest

from watcher.rules.packs import RuleSetError, available_packs, effective_rules, load_pack
from watcher.rules.rule import Rule


def test_every_pack_loads_with_unique_reasons_and_descriptions() -> None:
    assert "nccl" in available_packs()
    reasons: list[str] = []
    for name in available_packs():
        rules = load_pack(name)
        assert rules, name
        assert all(rule.pack == name and rule.description for rule in rules)
        reasons += [rule.reason for rule in rules]
    assert len(reasons) == len(set(reasons))


def test_all_none_and_explicit_selection() -> None:
    everything = effective_rules(["all"], [], [])
    assert {r.pack for r in everything} == set(available_packs())
    assert effective_rules(["none"], [], []) == ()
    assert effective_rules([], [], []) == ()
    assert effective_rules(["NCCL"], [], []) == load_pack("nccl")


def test_unknown_pack_lists_the_available_ones() -> None:
    with pytest.raises(RuleSetError, match=r"unknown rule pack.*nope.*available: .*nccl"):
        effective_rules(["nope"], [], [])


def test_all_cannot_be_mixed() -> None:
    with pytest.raises(RuleSetError, match="alone"):
        effective_rules(["all", "nccl"], [], [])


def test_disable_by_reason_and_refuse_unknown_reasons() -> None:
    rules = effective_rules(["nccl"], [], ["NcclWatchdogTimeout"])
    assert "NcclWatchdogTimeout" not in {r.reason for r in rules}
    with pytest.raises(RuleSetError, match="cannot disable NcclWatchdogTimout"):
        effective_rules(["nccl"], [], ["NcclWatchdogTimout"])


def test_user_rule_replaces_builtin_of_same_reason_and_comes_last() -> None:
    mine = Rule(reason="NcclWatchdogTimeout", pattern="my own pattern")
    rules = effective_rules(["nccl"], [mine], [])
    same = [r for r in rules if r.reason == "NcclWatchdogTimeout"]
    assert same == [mine]
    assert rules[-1] is mine


def test_duplicate_user_reasons_are_refused() -> None:
    rule = Rule(reason="Mine", pattern="x")
    with pytest.raises(RuleSetError, match="two of your rules"):
        effective_rules([], [rule, rule], [])


def test_extra_excludes_extend_a_builtin_rule_by_reason() -> None:
    rules = effective_rules(["nccl"], [], [], {"ncclerror": ["during shutdown"]})
    (rule,) = [r for r in rules if r.reason == "NcclError"]
    assert rule.exclude[-1] == "during shutdown"
    assert rule.pack == "nccl"


def test_extra_excludes_must_name_an_active_rule_and_compile() -> None:
    with pytest.raises(RuleSetError, match="cannot add excludes to NoSuch: ") as caught:
        effective_rules(["nccl"], [], [], {"NoSuch": ["x"]})
    assert caught.value.key == "extra_excludes"
    with pytest.raises(RuleSetError, match="look-ahead"):
        effective_rules(["nccl"], [], [], {"NcclError": ["a(?=b)"]})
