"""What a carried-out decision leaves behind: its ledger entry and its log fields."""

from collections.abc import Mapping

from watcher.state.ledger import LedgerEntry
from watcher.types import Action, Decision


def ledger_entry(
    decision: Decision,
    wall: float,
    exit_code: int | None,
    action: str = "",
    marks: Mapping[str, object] | None = None,
) -> LedgerEntry:
    """The ledger entry of ``decision``, at wall-clock time ``wall``; ``action`` overrides
    the decision's (an observed restart is recorded as a restart), ``marks`` are added to
    its details (the gang restart it belongs to)."""
    finding = decision.finding
    return LedgerEntry(
        action=action or decision.action.value,
        reason=finding.reason,
        time=wall,
        explanation=decision.explanation,
        fault_class=finding.fault_class.value,
        evidence=finding.evidence,
        file=finding.file,
        offset=finding.offset,
        exit_code=exit_code,
        details={**decision.details, **_observed(decision), **(marks or {})},
    )


def _observed(decision: Decision) -> Mapping[str, object]:
    return {"observed": True} if decision.action is Action.COUNT else {}


def log_fields(decision: Decision) -> dict[str, object]:
    finding = decision.finding
    return {
        "action": decision.action.value,
        "reason": finding.reason,
        "fault_class": finding.fault_class.value,
        "file": finding.file,
        "offset": finding.offset,
        "evidence": list(finding.evidence),
        "details": decision.details,
    }
