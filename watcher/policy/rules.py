"""The policy's view of a rule: how often it must be seen, how fast, and what it asks for.

A finding is a fact: what was seen, where, when, with its evidence. Whether one sighting is
enough to act, and which action a rule names instead of its fault class's, belongs to the
policy, which looks it up here by the finding's source and reason.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from watcher.rules.rule import Rule
from watcher.types import Action, Finding


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
