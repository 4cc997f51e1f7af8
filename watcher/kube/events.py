"""Events on the own Pod: what was seen and what happens next, where `kubectl describe` shows it.

Deduplicated (the same event reason for the same finding reason at most once per
``DEDUP_WINDOW``) and rate-limited (``BURST`` per ``RATE_WINDOW``). Posting is a side
channel: it has a deadline, and a refused or failing API only costs a log line.
"""

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from watcher.clock import Clock
from watcher.kube.client import ApiError, KubeApi
from watcher.types import Action, Decision

log = logging.getLogger(__name__)

DEDUP_WINDOW = 600.0
RATE_WINDOW = 300.0
BURST = 10
MESSAGE_LIMIT = 1024
"""Event messages are cut to this many characters."""


NOTICED_SOURCES = frozenset({"kubernetes", "state"})
"""Every warning of these sources is an Event: wiring problems, a sick state volume."""
NOTICED_WARNINGS = frozenset(
    {"LogGlobMatchesNothing", "ProbeNeverSucceeded", "GpuMonitorUnavailable"}
)
"""Warnings that say the watcher is not watching what it was told to: a glob matching no
file after the grace, a probe that never once succeeded, GPUs it cannot read."""


@dataclass(frozen=True, slots=True)
class PodEvent:
    reason: str
    """Stable CamelCase event reason."""
    message: str
    warning: bool = True
    key: str = ""
    """Deduplication key beyond the reason (e.g. the finding's reason)."""


def event_for(decision: Decision, exit_code: int) -> PodEvent | None:
    """The Event a decision deserves, if any (plain warnings and notes get none)."""
    finding = decision.finding
    seen = f"{finding.reason} ({finding.fault_class.value})"
    if finding.file:
        seen += f" in {finding.file}"
    if finding.evidence:
        seen += f": {finding.evidence[0][:400]}".rstrip(".")
    if decision.dry_run:
        if decision.action not in (Action.RESTART, Action.EVICT):
            return None
        verb = "restart all containers" if decision.action is Action.RESTART else "evict the Pod"
        return PodEvent(
            "WouldRestartAllContainers", f"{seen}. Dry run: would {verb}.", key=finding.reason
        )
    if decision.action is Action.WARN:  # only what someone must fix: wiring, setup, volume
        worth = finding.source in NOTICED_SOURCES or finding.reason in NOTICED_WARNINGS
        return (
            PodEvent(finding.reason, f"{finding.message}.", key=finding.reason) if worth else None
        )
    next_step = {
        Action.RESTART: (
            "RestartingAllContainers",
            f"Exiting {exit_code}: the kubelet restarts every container in place.",
        ),
        Action.EVICT: ("EvictingPod", f"{decision.explanation}."),
        Action.HOLD: ("WatcherHolding", f"{decision.explanation}."),
        Action.FAIL: ("FailingPod", f"{decision.explanation}."),
        Action.COUNT: ("InPlaceRestartCounted", f"{decision.explanation}."),
    }.get(decision.action)
    if next_step is None:
        return None
    reason, then = next_step
    return PodEvent(reason, f"{seen}. {then}", key=finding.reason)


class EventPoster:
    """Turns PodEvents into core/v1 Events on the own Pod."""

    def __init__(self, api: KubeApi, clock: Clock, container: str) -> None:
        self._api = api
        self._clock = clock
        self._container = container
        self._last: dict[tuple[str, str], float] = {}
        self._recent: deque[float] = deque()
        self.posted = 0
        self.suppressed = 0
        self.failed = 0

    async def post(self, event: PodEvent) -> bool:
        """Post unless deduplicated or rate-limited; never raises. True if it was posted."""
        now = self._clock.monotonic()
        if not self._allowed(event, now):
            self.suppressed += 1
            return False
        try:
            await self._api.create_event(self._body(event))
        except ApiError as exc:
            self.failed += 1
            log.warning("cannot post Event %s: %s", event.reason, exc)
            return False
        self.posted += 1
        return True

    def _allowed(self, event: PodEvent, now: float) -> bool:
        key = (event.reason, event.key)
        last = self._last.get(key)
        if last is not None and now - last < DEDUP_WINDOW:
            return False
        while self._recent and now - self._recent[0] >= RATE_WINDOW:
            self._recent.popleft()
        if len(self._recent) >= BURST:
            return False
        self._last[key] = now
        self._recent.append(now)
        return True

    def _body(self, event: PodEvent) -> dict[str, Any]:
        pod = self._api.pod
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock.wall()))
        involved = {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": pod.name,
            "namespace": pod.namespace,
            "fieldPath": f"spec.initContainers{{{self._container}}}",
        }
        if self._api.pod_uid:  # learnt when the Pod was read
            involved["uid"] = self._api.pod_uid
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{pod.name}.", "namespace": pod.namespace},
            "involvedObject": involved,
            "reason": event.reason,
            "message": event.message[:MESSAGE_LIMIT],
            "type": "Warning" if event.warning else "Normal",
            "source": {"component": "pod-watcher"},
            "reportingComponent": "pod-watcher",
            "reportingInstance": pod.name,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
