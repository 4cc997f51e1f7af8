"""The policy's view of a rule: how often it must be seen, how fast, and what it asks for.

A finding is a fact: what was seen, where, when, with its evidence. Whether one sighting is
enough to act, and which action a rule names instead of its fault class's, belongs to the
policy, which looks it up here by the finding's source and reason.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from watcher.rules.rule import Rule
from watcher.types import Action, FaultClass, Finding, Severity


@dataclass(frozen=True, slots=True)
class RuleView:
    count: int = 1
    """Act only after this many sightings..."""
    window: float = 0.0
    """...within this many seconds."""
    action: Action | None = None
    """The rule's own action, instead of its fault class's."""


ONCE = RuleView()
"""What a finding without a rule of its own gets: one sighting acts, as its class says."""

RuleViews = Mapping[tuple[str, str], RuleView]
"""Keyed by (source, reason): two sources may use the same reason for different things."""


def rule_views(source: str, rules: Iterable[Rule]) -> dict[tuple[str, str], RuleView]:
    """The views of the rules whose findings come from ``source`` (the log monitor's)."""
    return {(source, r.reason): RuleView(r.count, r.window, r.action) for r in rules}


def view_of(views: RuleViews, finding: Finding) -> RuleView:
    return views.get((finding.source, finding.reason), ONCE)


class Classified(Protocol):
    """A rule or a finding: what it means."""

    @property
    def severity(self) -> Severity: ...

    @property
    def fault_class(self) -> FaultClass: ...


def configured_action(
    subject: Classified, actions: Mapping[FaultClass, Action], own: Action | None = None
) -> Action:
    """The action one occurrence leads to, before thresholds and the budget: nothing for
    a note, a warning for a warning, else the rule's ``own`` action or its fault class's
    (``actions``). The one place that says it, for the policy and for replay alike."""
    if subject.severity is Severity.INFO:
        return Action.NONE
    if subject.severity is Severity.WARNING:
        return Action.WARN
    return own or actions[subject.fault_class]
