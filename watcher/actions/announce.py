"""What `kubectl describe pod` shows of a decision: an Event and the Pod's annotations.

Both are optional (they need API access), bounded by the API deadline, and never fatal:
a refused or stalled API costs a log line. After a RestartAllContainers the kubelet
replaces every container's last state with 137 / `RestartingAllContainers`, so the
annotation is where the reason of the last restart stays visible.
"""

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from watcher.kube.client import ApiError
from watcher.kube.events import EventPoster, event_for
from watcher.state.ledger import LedgerEntry
from watcher.types import Action, Decision

log = logging.getLogger(__name__)

LAST_RESTART = "pod-watcher.io/last-restart"
LAST_ACTION = "pod-watcher.io/last-action"
EXPLANATION_LIMIT = 512
Annotate = Callable[[Mapping[str, str]], Awaitable[None]]


class Announcer:
    def __init__(
        self,
        exit_code: int,
        events: EventPoster | None = None,
        annotate: Annotate | None = None,
    ) -> None:
        self._exit_code = exit_code
        self.events = events
        self._annotate = annotate
        self._background: set[asyncio.Task[bool]] = set()

    async def announce(self, decision: Decision) -> None:
        """Post the Event the decision deserves, if any (bounded, never raises)."""
        event = event_for(decision, self._exit_code)
        if event is not None and self.events is not None:
            await self.events.post(event)

    def later(self, decision: Decision) -> None:
        """The same, without waiting for it."""
        event = event_for(decision, self._exit_code)
        if event is not None and self.events is not None:
            task = asyncio.create_task(self.events.post(event), name="event")
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def annotate(
        self, decision: Decision, entry: LedgerEntry, restart_number: int | None
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
        try:
            await self._annotate(annotations)
        except ApiError as exc:
            log.warning("cannot annotate the Pod: %s", exc)

    async def close(self) -> None:
        """Cancel Events still being posted in the background."""
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.wait(self._background, timeout=1.0)


def _compact(record: Mapping[str, object]) -> str:
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)
