"""The probe monitor: each probe on its own schedule, Kubernetes semantics.

After ``initialDelaySeconds``, a check every ``periodSeconds``, each bounded by
``timeoutSeconds``. ``failureThreshold`` failures in a row make one finding; the probe
is healthy again after ``successThreshold`` successes in a row, and may then report
the next run of failures. Until a probe has succeeded once, its finding is a warning
(`ProbeNeverSucceeded`): a probe that can never work (a wrong port, an endpoint the
trainer does not serve) must not restart the Pod in place until the budget is spent.

Checks after the first sit on the period's beats (`watcher.timers`), so probes with the
same period, and the other periodic timers, share one wake-up. The second check
therefore comes half a period to one and a half periods after the first.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from watcher.clock import Clock
from watcher.monitor import Emit
from watcher.probes.checks import Checker, ProbeResult
from watcher.probes.spec import ProbeSpec
from watcher.timers import beat_after, loop_time, wait_until
from watcher.types import Finding, Severity


@dataclass
class ProbeState:
    """One probe's streaks, for the decision and for /status."""

    failures: int = 0
    successes: int = 0
    reported: bool = False
    """The current run of failures was reported already."""
    last: ProbeResult | None = None
    last_success_at: float | None = None
    next_at: float | None = None
    """When the next check is due, on the event loop's clock."""
    history: list[str] = field(default_factory=list)
    """Details of the current run of failures, latest last."""
    checks: int = 0
    failed: int = 0
    ever_succeeded: bool = False
    """Until it has, failures are warnings: a typo in the URL must not restart the Pod."""


NEVER_SUCCEEDED = "ProbeNeverSucceeded"


class ProbeMonitor:
    name = "probes"

    def __init__(
        self,
        specs: Sequence[ProbeSpec],
        clock: Clock,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._checkers = [Checker(spec, session) for spec in specs]
        self._clock = clock
        self.states = [ProbeState() for _ in specs]
        self.ready = asyncio.Event()

    async def run(self, emit: Emit) -> None:
        self.ready.set()
        async with asyncio.TaskGroup() as group:
            for checker, state in zip(self._checkers, self.states, strict=True):
                group.create_task(self._probe(checker, state, emit), name=checker.spec.label)

    async def _probe(self, checker: Checker, state: ProbeState, emit: Emit) -> None:
        spec = checker.spec
        state.next_at = loop_time() + spec.initial_delay
        while True:
            await wait_until(started := state.next_at)
            result = await checker.check()
            state.next_at = beat_after(started, loop_time(), spec.period)
            now = self._clock.monotonic()
            if self._record(spec, state, result, now):
                emit(self._finding(spec, state, now))

    def _record(self, spec: ProbeSpec, state: ProbeState, result: ProbeResult, now: float) -> bool:
        """Update the streaks; True when this failure is the one to report."""
        state.last = result
        state.checks += 1
        if result.ok:
            state.last_success_at = now
            state.ever_succeeded = True
            state.successes += 1
            if state.successes >= spec.success_threshold:
                state.failures, state.reported, state.history = 0, False, []
            return False
        state.successes = 0
        state.failures += 1
        state.failed += 1
        kept = state.history[max(0, len(state.history) - spec.failure_threshold + 1) :]
        state.history = [*kept, result.detail]
        if state.failures >= spec.failure_threshold and not state.reported:
            state.reported = True
            return True
        return False

    def _finding(self, spec: ProbeSpec, state: ProbeState, now: float) -> Finding:
        message = (
            f"{spec.label} failed {state.failures} times in a row "
            f"(failureThreshold {spec.failure_threshold}, every {spec.period:g}s)"
        )
        reason, severity = spec.reason, Severity.FATAL
        if not state.ever_succeeded:
            reason, severity = NEVER_SUCCEEDED, Severity.WARNING
            message += (
                " and has never succeeded: a wrong URL or port, or a workload that does not "
                "serve it (yet)? A warning, not a restart, until it has succeeded once"
            )
        return Finding(
            source=self.name,
            reason=reason,
            severity=severity,
            fault_class=spec.fault_class,
            message=message,
            at=now,
            evidence=tuple(state.history),
        )

    def healthy(self) -> tuple[bool, str]:
        return True, f"{len(self._checkers)} probes"

    def up(self) -> bool:
        """Every probe's last check succeeded (none has, before its first check)."""
        return all(state.last is not None and state.last.ok for state in self.states)

    def status(self) -> dict[str, Any]:
        now, beat_now = self._clock.monotonic(), loop_time()
        pairs = zip(self._checkers, self.states, strict=True)
        return {"probes": [_probe_status(c.spec, s, now, beat_now) for c, s in pairs]}

    def counters(self) -> dict[str, float]:
        return {
            "checks": float(sum(s.checks for s in self.states)),
            "check_failures": float(sum(s.failed for s in self.states)),
        }


def _probe_status(
    spec: ProbeSpec, state: ProbeState, now: float, loop_now: float
) -> dict[str, Any]:
    left = max(0, spec.failure_threshold - state.failures)
    time_left = None
    if state.next_at is not None and not state.reported:
        time_left = max(0.0, state.next_at - loop_now) + max(0, left - 1) * spec.period
    return {
        "probe": spec.label,
        "last": None if state.last is None else state.last.detail,
        "ok": None if state.last is None else state.last.ok,
        "failures_in_a_row": state.failures,
        "successes_in_a_row": state.successes,
        "last_success_age_s": None
        if state.last_success_at is None
        else now - state.last_success_at,
        "reported": state.reported,
        "failures_before_report": left,
        "time_left_s": time_left,
    }
