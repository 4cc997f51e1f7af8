"""What the policy is told at start: the restart code, the budget, the action of each fault
class, what can be carried out here, and each rule's own threshold and action."""

from collections.abc import Mapping
from dataclasses import dataclass, field

from watcher.policy.budget import BudgetConfig
from watcher.policy.rules import RuleViews
from watcher.types import Action, FaultClass


@dataclass(frozen=True)
class PolicyConfig:
    restart_exit_code: int
    dry_run: bool
    budget: BudgetConfig
    actions: Mapping[FaultClass, Action]
    budget_exhausted_action: Action = Action.FAIL
    can_evict: bool = False
    """Whether an eviction can be carried out (needs the Kubernetes API)."""
    can_fail: bool = False
    """Whether the Pod can be made to fail (needs the launcher in front of the workload)."""
    rules: RuleViews = field(default_factory=dict)
    """Each rule's threshold and own action, by the source and reason of its findings."""
