"""The Pod's annotations: where the reason of the last restart stays visible.

After a RestartAllContainers the kubelet replaces every container's last state with
137 / `RestartingAllContainers`, so the termination message is gone; the annotation is
written in the last words instead. Optional (it needs API access), bounded by the API
deadline, never fatal: a refused or stalled API costs a log line. (The Events are a
reporter's: `watcher.kube.event_reporter`.)
"""

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from watcher.kube.client import ApiError
from watcher.state.ledger import LedgerEntry
from watcher.types import Action, Decision

log = logging.getLogger(__name__)

LAST_RESTART = "pod-watcher.io/last-restart"
LAST_ACTION = "pod-watcher.io/last-action"
EXPLANATION_LIMIT = 512
Annotate = Callable[[Mapping[str, str]], Awaitable[object]]


class Annotator:
    def __init__(self, annotate: Annotate | None = None) -> None:
        self._annotate = annotate

    async def annotate(
        self,
        decision: Decision,
        entry: LedgerEntry,
        restart_number: int | None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        """Patch the annotations of an acted decision onto the own Pod (best effort)."""
        if self._annotate is None:
            return
        record = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry.time)),
            "action": decision.action.value,
            "reason": decision.finding.reason,
            "fault_class": decision.finding.fault_class.value,
            "explanation": decision.explanation[:EXPLANATION_LIMIT],
            "ledger_id": entry.id,
        }
        annotations = {LAST_ACTION: _compact(record)}
        if decision.action is Action.RESTART:
            restart = {**record, "rule": decision.finding.reason, "restart": restart_number}
            restart["evidence"] = (
                decision.finding.evidence[0][:EXPLANATION_LIMIT]
                if (decision.finding.evidence)
                else ""
            )
            annotations[LAST_RESTART] = _compact(restart)
        annotations.update(extra or {})
        try:
            await self._annotate(annotations)
        except ApiError as exc:
            log.warning("cannot annotate the Pod: %s", exc)


def _compact(record: Mapping[str, object]) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)
