"""Built-in rule packs (YAML files shipped inside the package) and the effective rule set."""

from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import ValidationError

from watcher.rules.rule import Rule
from watcher.rules.suggest import did_you_mean


class RuleSetError(ValueError):
    """The packs, rules and disabled reasons do not add up to a usable rule set."""

    def __init__(self, message: str, key: str = "rule_packs") -> None:
        super().__init__(message)
        self.key = key
        """The setting at fault."""


def available_packs() -> tuple[str, ...]:
    """Names of the packs shipped with this version, sorted."""
    folder = resources.files("watcher.rules") / "packs"
    names = (entry.name for entry in folder.iterdir() if entry.name.endswith(".yaml"))
    return tuple(sorted(name.removesuffix(".yaml") for name in names))


@cache
def load_pack(name: str) -> tuple[Rule, ...]:
    """The rules of one built-in pack, validated."""
    if name not in available_packs():
        raise RuleSetError(
            f"unknown rule pack {name!r}{did_you_mean(name, available_packs())}; "
            f"available: {', '.join(available_packs())}"
        )
    text = (resources.files("watcher.rules") / "packs" / f"{name}.yaml").read_text("utf-8")
    document: Any = yaml.safe_load(text)
    rules = []
    for index, raw in enumerate(document["rules"]):
        try:
            rules.append(Rule.model_validate({**raw, "pack": name}))
        except ValidationError as exc:  # a broken pack is a bug in this package
            raise RuleSetError(f"built-in pack {name} rule #{index}: {exc}") from exc
    return tuple(rules)


def selected_packs(requested: Sequence[str]) -> tuple[str, ...]:
    """Resolve `all` / `none` / explicit names into pack names."""
    names = [name.lower() for name in requested]
    if not names or names == ["none"]:
        return ()
    if "all" in names:
        if len(names) > 1:
            raise RuleSetError("use `all` alone, or list the packs you want")
        return available_packs()
    unknown = [name for name in names if name not in available_packs()]
    if unknown:
        named = ", ".join(name + did_you_mean(name, available_packs()) for name in unknown)
        raise RuleSetError(
            f"unknown rule pack(s) {named}; available: {', '.join(available_packs())}"
        )
    return tuple(dict.fromkeys(names))


def effective_rules(
    packs: Sequence[str],
    user_rules: Sequence[Rule],
    disabled: Sequence[str],
    extra_excludes: Mapping[str, Sequence[str]] | None = None,
) -> tuple[Rule, ...]:
    """Built-in rules of the selected packs, minus disabled ones, then the user's rules.

    A user rule with the same reason as a built-in one replaces it. ``extra_excludes``
    adds exclude patterns to rules by reason (case-insensitive).
    """
    seen: set[str] = set()
    for rule in user_rules:
        if rule.reason in seen:
            raise RuleSetError(f"two of your rules have the reason {rule.reason}", "rules")
        seen.add(rule.reason)
    builtin = [rule for name in selected_packs(packs) for rule in load_pack(name)]
    unknown = sorted(set(disabled) - {rule.reason for rule in builtin})
    if unknown:
        raise RuleSetError(
            "cannot disable " + "; ".join(_not_selected(reason, builtin) for reason in unknown),
            "disable_rules",
        )
    kept = [r for r in builtin if r.reason not in disabled and r.reason not in seen]
    return _with_excludes([*kept, *user_rules], extra_excludes or {})


def _not_selected(reason: str, selected: Sequence[Rule]) -> str:
    """Why ``reason`` cannot be disabled: in a pack not selected, or not a rule at all."""
    packs = [name for name in available_packs() if reason in {r.reason for r in load_pack(name)}]
    if packs:
        return f"{reason}: its pack {packs[0]} is not selected"
    every = {r.reason for name in available_packs() for r in load_pack(name)}
    every |= {r.reason for r in selected}
    return f"{reason}: no such rule{did_you_mean(reason, every)}"


def _with_excludes(rules: list[Rule], extra: Mapping[str, Sequence[str]]) -> tuple[Rule, ...]:
    wanted = {reason.lower(): tuple(patterns) for reason, patterns in extra.items()}
    active = {rule.reason.lower() for rule in rules}
    unknown = sorted(reason for reason in extra if reason.lower() not in active)
    if unknown:
        reasons = [rule.reason for rule in rules]
        named = ", ".join(reason + did_you_mean(reason, reasons) for reason in unknown)
        raise RuleSetError(f"cannot add excludes to {named}: no such active rule", "extra_excludes")
    return tuple(_add_excludes(rule, wanted.get(rule.reason.lower(), ())) for rule in rules)


def _add_excludes(rule: Rule, more: tuple[str, ...]) -> Rule:
    if not more:
        return rule
    try:
        return Rule.model_validate({**rule.model_dump(), "exclude": rule.exclude + more})
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise RuleSetError(problems, "extra_excludes") from None
