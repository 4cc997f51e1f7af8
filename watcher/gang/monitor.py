"""The gang monitor: follows the gang's one shared object and reports its edges.

It joins the gang at first sight (writes this Pod's arrival), holds the barrier (its
``ready`` stays unset, so /readyz answers 503 and the startupProbe holds the trainer)
until the coordination says every Pod arrived, and reports as findings: the gang
restarting past this Pod (fatal), the barrier lifted (info), the barrier deadline passed
(fatal), coordination lost and back (warning, info). It never decides: the policy does.
"""

import asyncio
import contextlib
import logging
import random
from typing import Any

from watcher.clock import Clock
from watcher.gang import reasons
from watcher.gang.coordinator import Coordinator, Edge
from watcher.kube.client import ApiError
from watcher.kube.watch import Lost, Obj
from watcher.monitor import Emit
from watcher.types import FaultClass, Finding, Severity

log = logging.getLogger(__name__)


class GangMonitor:
    name = "gang"

    def __init__(self, coordinator: Coordinator, clock: Clock, *, barrier_timeout: float) -> None:
        self.coordinator = coordinator
        self._clock = clock
        self._barrier_timeout = barrier_timeout
        self.ready = asyncio.Event()
        """The barrier is down (/readyz 200)."""
        self.state = "joining"
        self.lost: str | None = None
        self._restart: Edge | None = None
        self._expired = False
        """The barrier deadline passed: the Pod fails, the barrier never lifts after it."""
        self._pod: asyncio.Future[dict[str, Any] | None] | None = None
        self._emit: Emit = lambda finding: None

    async def run(self, emit: Emit) -> None:
        self._emit = emit
        deadline = asyncio.create_task(self._deadline(), name="gang-barrier-deadline")
        aside = asyncio.create_task(self.coordinator.background(), name="gang-background")
        try:
            async for update in self.coordinator.watch:
                if isinstance(update, Lost):
                    self._lost(update.reason)
                    continue
                self._back()
                if self.coordinator.own is None and not await self._join(update.obj):
                    continue
                self._edge(self.coordinator.edge(update.obj))
        finally:
            for task in (deadline, aside):
                task.cancel()
            self._pod_known(None)

    async def pod_read(self, within: float) -> dict[str, Any] | None:
        """The own Pod from the join's answer (None: not written, or not within ``within``)."""
        if self._pod is None:
            self._pod = asyncio.get_running_loop().create_future()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                return await asyncio.shield(self._pod)
        return None

    def _pod_known(self, pod: dict[str, Any] | None) -> None:
        if self._pod is None:
            self._pod = asyncio.get_running_loop().create_future()
        if not self._pod.done():
            self._pod.set_result(pod)

    async def _join(self, obj: Obj | None) -> bool:
        """Write this Pod's arrival, retried with back-off (the deadline bounds the wait)."""
        backoff = 0.2
        while True:
            try:
                pod = await self.coordinator.join(obj)
            except ApiError as exc:
                log.warning("gang: cannot join: %s", exc)
                self._lost(f"cannot write this Pod's arrival: {exc}")
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, 5.0)
                continue
            self._back()
            self._pod_known(pod)
            self.state = f"waiting at generation {self.coordinator.own}"
            log.info("gang: joined", extra={"fields": {"generation": self.coordinator.own}})
            return True

    def _edge(self, edge: Edge | None) -> None:
        if edge is None:
            return
        settled = self.ready.is_set() or self._restart is not None or self._expired
        if edge.kind == "lifted" and not settled:
            self.state = f"running at generation {edge.generation}"
            self.ready.set()
            self._report(reasons.BARRIER_LIFTED, Severity.INFO, edge.why, edge.generation)
        elif edge.kind == "restart" and self._restart is None:
            self._restart = edge
            self.state = f"restarting to generation {edge.generation}"
            why = f"the gang is restarting: {edge.why}"
            self._report(reasons.GANG_RESTART, Severity.FATAL, why, edge.generation)

    async def _deadline(self) -> None:
        await asyncio.sleep(self._barrier_timeout)
        if self.ready.is_set() or self._restart is not None:
            return
        self._expired = True
        self.state = "barrier deadline passed"
        why = (
            f"the barrier did not lift within {self._barrier_timeout:g}s "
            f"({self.lost or 'a Pod of the gang did not come back'})"
        )
        self._report(reasons.BARRIER_DEADLINE, Severity.FATAL, why, self.coordinator.own)

    def _lost(self, reason: str) -> None:
        if self.lost is None:
            self.lost = reason
            why = f"the gang's coordination is lost: {reason}"
            self._report(reasons.COORDINATION_LOST, Severity.WARNING, why, self.coordinator.own)

    def _back(self) -> None:
        if self.lost is not None:
            self.lost = None
            why = "the gang's coordination is back"
            self._report(reasons.COORDINATION_BACK, Severity.INFO, why, self.coordinator.own)

    def _report(self, reason: str, severity: Severity, why: str, generation: int | None) -> None:
        facts: dict[str, object] = {reasons.GANG_KEY: self.coordinator.key}
        if generation is not None:
            facts[reasons.GENERATION] = generation
        self._emit(
            Finding(
                source=self.name,
                reason=reason,
                severity=severity,
                fault_class=FaultClass.TRANSIENT,
                message=why,
                at=self._clock.monotonic(),
                evidence=(why,),
                facts=facts,
            )
        )

    def healthy(self) -> tuple[bool, str]:
        return True, self.state

    def up(self) -> bool:
        return self.lost is None and self.coordinator.own is not None

    def status(self) -> dict[str, Any]:
        return {
            "gang": self.coordinator.key,
            "state": self.state,
            "generation": self.coordinator.own,
            "barrier": "down" if self.ready.is_set() else "up",
            "lost": self.lost,
        }

    def counters(self) -> dict[str, float]:
        watch = self.coordinator.watch
        return {"relists": float(watch.relists), "rewatches": float(watch.rewatches)}
