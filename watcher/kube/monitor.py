"""The Kubernetes monitor: is the Pod wired right, and did our last restart really happen?

At start it reads the own Pod and reports each wiring problem (warning findings: the
policy decides, /status and the metrics show them). After a start that follows a
restart we asked for, it watches the other containers come back: one still running
with a start time before our exit means the kubelet ignored the rule and restarted only
the watcher (an old kubelet, the gate off). That is a fatal finding of fault class
platform (another restart in place would not happen either): the policy evicts, or,
without the API, fails the Pod.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from watcher.clock import Clock
from watcher.kube.client import ApiError, KubeApi
from watcher.kube.pod_checks import check_pod
from watcher.kube.wiring import WiringProblem
from watcher.monitor import Emit
from watcher.types import FaultClass, Finding, Severity

log = logging.getLogger(__name__)

POLL = (1.0, 2.0, 5.0, 10.0)
"""Seconds between Pod reads while waiting for the containers to come back."""
SKEW = 1.0
"""Seconds of slack between our exit time and a container's start time."""


class KubeMonitor:
    name = "kubernetes"

    def __init__(
        self,
        api: KubeApi,
        clock: Clock,
        *,
        container: str,
        exit_code: int,
        restarted_at: float | None,
        verify_timeout: float,
        launcher_dir: str | None = None,
        first_read: Callable[[], Awaitable[dict[str, Any] | None]] | None = None,
    ) -> None:
        """``first_read``: the own Pod as another request already returned it (the gang's
        arrival patch), so the start costs no GET of its own; None falls back to a GET."""
        self._api = api
        self._first_read = first_read
        self._clock = clock
        self._container = container
        self._exit_code = exit_code
        self._restarted_at = restarted_at
        self._verify_timeout = verify_timeout
        self._launcher_dir = launcher_dir
        self.ready = asyncio.Event()
        self.pod: dict[str, Any] | None = None
        self.problems: list[WiringProblem] = []
        self.verification = "not needed" if restarted_at is None else "pending"
        self._answered = False
        """The last read of the own Pod succeeded."""

    async def run(self, emit: Emit) -> None:
        first = None if self._first_read is None else await self._first_read()
        try:
            self.pod = first if first is not None else await self._api.read_pod()
        except ApiError as exc:
            log.warning("cannot read the own Pod, no wiring check: %s", exc)
            self.ready.set()
            await self._verify(emit)
            return
        self._answered = True
        spec = self.pod.get("spec", {})
        self.problems = check_pod(spec, self._container, self._exit_code, self._launcher_dir)
        for problem in self.problems:
            emit(self._finding(problem.reason, problem.message, Severity.WARNING))
        self.ready.set()
        await self._verify(emit)

    async def _verify(self, emit: Emit) -> None:
        if self._restarted_at is None:
            return
        deadline = self._clock.monotonic() + self._verify_timeout
        attempt = 0
        if self._first_read is not None and self.pod is not None:  # no GET if it tells
            verdict = restart_verdict(self.pod, self._container, self._restarted_at)
            if verdict is not None:
                self._conclude(verdict, emit)
                return
        while self._clock.monotonic() < deadline:
            verdict = await self._check_once()
            if verdict is not None:
                self._conclude(verdict, emit)
                return
            await asyncio.sleep(POLL[min(attempt, len(POLL) - 1)])
            attempt += 1
        self.verification = (
            f"unknown: the containers did not come back in {self._verify_timeout:g}s"
        )
        log.warning("restart verification: %s", self.verification)

    def _conclude(self, verdict: str, emit: Emit) -> None:
        self.verification = verdict
        if verdict != "restarted":
            emit(self._ineffective(verdict))

    async def _check_once(self) -> str | None:
        try:
            pod = await self._api.read_pod()
        except ApiError as exc:
            self._answered = False
            log.warning("restart verification: %s", exc)
            return None
        self._answered = True
        assert self._restarted_at is not None
        return restart_verdict(pod, self._container, self._restarted_at)

    def _ineffective(self, verdict: str) -> Finding:
        message = (
            f"{verdict}: the kubelet restarted only the watcher after exit {self._exit_code} "
            "(RestartAllContainers not honoured: a kubelet older than 1.35, or the "
            "RestartAllContainersOnContainerExits gate off); the workload kept running"
        )
        finding = self._finding("InPlaceRestartIneffective", message, Severity.FATAL)
        return replace(finding, fault_class=FaultClass.PLATFORM)  # the policy decides

    def _finding(self, reason: str, message: str, severity: Severity) -> Finding:
        return Finding(
            source=self.name,
            reason=reason,
            severity=severity,
            fault_class=FaultClass.INFRASTRUCTURE,
            message=message,
            at=self._clock.monotonic(),
            evidence=(message,),
        )

    def healthy(self) -> tuple[bool, str]:
        return True, "api"

    def up(self) -> bool:
        """The last read of the own Pod succeeded."""
        return self._answered

    def status(self) -> dict[str, Any]:
        return {
            "pod": f"{self._api.pod.namespace}/{self._api.pod.name}",
            "pod_read": self.pod is not None,
            "wiring_problems": [{"reason": p.reason, "message": p.message} for p in self.problems],
            "restart_verification": self.verification,
        }

    def counters(self) -> dict[str, float]:
        return {}


def restart_verdict(pod: Mapping[str, Any], own: str, restarted_at: float) -> str | None:
    """'restarted' when every other container started after ``restarted_at``; a sentence
    naming a container still running from before; None while some are not running yet."""
    status = pod.get("status") or {}
    others = [
        s
        for s in (status.get("initContainerStatuses") or [])
        + (status.get("containerStatuses") or [])
        if s.get("name") != own
    ]
    waiting = False
    for container in others:
        state = container.get("state") or {}
        if "terminated" in state and container.get("name") in _init_names(pod):
            continue  # a finished regular init container: it ran again or it will not show
        running = state.get("running")
        if running is None:
            waiting = True
            continue
        started = _epoch(running.get("startedAt"))
        if started is not None and started < restarted_at - SKEW:
            return f"container {container.get('name')!r} has been running since before the restart"
    return None if waiting else "restarted"


def _init_names(pod: Mapping[str, Any]) -> set[str]:
    return {c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or []}


def _epoch(stamp: object) -> float | None:
    if isinstance(stamp, datetime):
        return stamp.timestamp()
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None
