"""The GPU monitor: poll one backend every interval, classify, emit the findings.

Whatever the backend does (hang, raise, print garbage), the monitor stays alive: every
poll is bounded, a backend exception becomes a FAILED tool failure, and the loop goes
on. A broken GPU tool is a finding, never a dead monitor, so /healthz stays green
(a liveness restart of the sidecar would not mend the GPU).

Xid events (NVML) take their own path: each becomes a finding at once, through the Xid
catalog (`xids.xid_class`), and asks for an early poll. The classifier's rule for the last
Xid ("fire when it changed") suits DCGM's sticky gauge but would merge two equal Xids in a
row, which are two faults.
"""

import asyncio
import logging
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from watcher.clock import Clock
from watcher.gpu.backends import EventSource, GpuBackend
from watcher.gpu.classification.classifier import GpuClassifier
from watcher.gpu.kernel_log import bus_id_named
from watcher.gpu.model import GpuReading, Snapshot, ToolFailure, ToolProblem
from watcher.gpu.xids import xid_class, xid_message
from watcher.monitor import Emit
from watcher.timers import beat_after, loop_time, wait_until
from watcher.types import Finding

log = logging.getLogger(__name__)

MIN_GAP = 1.0
"""Seconds between the end of a poll and an early one asked for by an event."""
CLOSE_TIMEOUT = 0.5
"""Deadline for the backend's clean-up when the monitor is cancelled."""


class SnapshotFilter(Protocol):
    def keep(self, snapshot: Snapshot) -> Snapshot:
        """Only this Pod's GPUs in a poll (see `ours.OurGpus`)."""

    def admits(self, reading: GpuReading) -> bool:
        """Whether an event's reading is about one of this Pod's GPUs."""

    def owns(self, bus_id: str) -> bool | None:
        """Whether the GPU at ``bus_id`` is this Pod's; None while it cannot tell."""


@dataclass
class PollStats:
    polls: int = 0
    failures: int = 0
    """Polls with at least one tool failure (or an exception)."""
    seconds: float = 0.0
    xid_events: int = 0
    last_at: float | None = None
    last_duration: float | None = None
    last: Snapshot | None = None


class GpuMonitor:
    name = "gpu"

    def __init__(
        self,
        backend: GpuBackend,
        *,
        interval: float,
        timeout: float,
        clock: Clock,
        keep: SnapshotFilter | None = None,
        why: str = "",
        guard: float | None = None,
    ) -> None:
        self.backend = backend
        self._interval = interval
        self._guard = timeout * 5 + 5 if guard is None else guard
        """Deadline of a whole poll, beyond the backend's own (retries, reaping)."""
        self._clock = clock
        self._keep = keep
        self._why = why
        self._classifier = GpuClassifier(live=True)
        self._wake = asyncio.Event()
        self._emit: Emit | None = None
        self._last_error: str | None = None
        self.stats = PollStats()
        self.readings: dict[str, GpuReading] = {}
        self.ready = asyncio.Event()

    async def run(self, emit: Emit) -> None:
        self._emit = emit
        if isinstance(self.backend, EventSource):
            self.backend.listen(self._on_event)
        try:
            while True:
                self._wake.clear()
                started = loop_time()
                snapshot = await self.poll_once()
                for finding in self._classifier.classify(snapshot, self._clock.monotonic()):
                    emit(finding)
                self.ready.set()
                await self._sleep(started)
        finally:
            await self._close()

    async def _close(self) -> None:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.backend.close()
        except Exception as exc:  # on the way out: say it, do not mask the cancellation
            log.warning("gpu backend %s did not close cleanly: %r", self.backend.name, exc)

    async def poll_once(self) -> Snapshot:
        """One bounded poll of the backend, filtered to our GPUs and counted."""
        started = self._clock.monotonic()
        try:
            async with asyncio.timeout(self._guard):
                snapshot = await self.backend.poll()
        except TimeoutError:
            detail = f"{self.backend.name} poll overran {self._guard:g}s"
            snapshot = _failed(self.backend.name, ToolProblem.TIMED_OUT, detail)
        except Exception as exc:  # a bug or an outside failure: reported, the loop goes on
            detail = f"{type(exc).__name__}: {exc}"
            if detail != self._last_error:  # once per kind of error, not every poll
                log.warning("gpu backend %s failed", self.backend.name, exc_info=exc)
            self._last_error = detail
            snapshot = _failed(self.backend.name, ToolProblem.FAILED, detail)
        else:
            self._last_error = None
        if self._keep is not None:
            snapshot = self._keep.keep(snapshot)
        self._count(snapshot, started)
        return snapshot

    def _count(self, snapshot: Snapshot, started: float) -> None:
        now = self._clock.monotonic()
        stats = self.stats
        stats.polls += 1
        stats.failures += bool(snapshot.failures)
        stats.last_at, stats.last_duration, stats.last = now, now - started, snapshot
        stats.seconds += now - started
        self.readings.update((r.gpu.label(), r) for r in snapshot.readings)
        for failure in snapshot.failures:
            log.debug("gpu tool failure: %s: %s", failure.problem, failure.detail)

    async def _sleep(self, started: float) -> None:
        """Until the interval's next beat (`watcher.timers`), or sooner when an event asks
        for a poll, but not sooner than MIN_GAP."""
        beat = beat_after(started, loop_time(), self._interval)
        if await wait_until(beat, self._wake):
            await wait_until(min(beat, loop_time() + min(MIN_GAP, self._interval)))

    def _on_event(self, reading: GpuReading | None) -> None:
        if reading is not None and reading.xid and self._emit is not None and self._ours(reading):
            self.stats.xid_events += 1
            self._emit(xid_finding(self.backend.name, reading, self._clock.monotonic()))
        self._wake.set()

    def owns(self, bus_id: str) -> bool | None:
        """Whether the GPU at ``bus_id`` is this Pod's, as far as the polls tell."""
        return None if self._keep is None else self._keep.owns(bus_id)

    def foreign_gpu(self, finding: Finding) -> str | None:
        """The bus id of the GPU a kernel log line names (a finding's first evidence line
        is the line it matched), when the polls show that GPU is another Pod's: a node's
        kernel log holds every GPU's lines."""
        named = bus_id_named(finding.evidence[0]) if finding.evidence else None
        return named if named is not None and self.owns(named) is False else None

    def _ours(self, reading: GpuReading) -> bool:
        return self._keep is None or self._keep.admits(reading)

    def up(self) -> bool:
        """Whether the source answered at the last look: the last poll read a GPU (a lost
        one included: the tool said so). False before the first poll, while every poll
        fails, and when none of this Pod's GPUs is listed. Read by `watcher_monitor_up`."""
        last = self.stats.last
        return last is not None and bool(last.readings)

    def healthy(self) -> tuple[bool, str]:
        """Always true, even while `up()` is not: a failing GPU tool is reported as
        findings, and a liveness restart of the sidecar would not mend it."""
        last = self.stats.last
        if last is None:
            return True, f"{self.backend.name}: first poll pending"
        problems = ", ".join(sorted({f.problem.value for f in last.failures}))
        detail = f"{len(last.readings)} GPUs" + (f", failing: {problems}" if problems else "")
        return True, f"{self.backend.name}: {detail}"

    def status(self) -> dict[str, Any]:
        stats, now = self.stats, self._clock.monotonic()
        last = stats.last
        return {
            "backend": self.backend.name,
            "why": self._why,
            "up": self.up(),
            "interval_s": self._interval,
            "polls": stats.polls,
            "gpus": {label: _summary(r) for label, r in self.readings.items()},
            "last_poll_age_s": None if stats.last_at is None else now - stats.last_at,
            "last_poll_duration_s": stats.last_duration,
            "failures": [] if last is None else [_failure(f) for f in last.failures],
            "xid_events": stats.xid_events,
            "tool": self.backend.status(),
        }

    def counters(self) -> dict[str, float]:
        """The polls', and the backend's own where it has some (the relay's CPU time)."""
        stats = self.stats
        own = getattr(self.backend, "counters", None)
        return {
            "polls": float(stats.polls),
            "poll_failures": float(stats.failures),
            "poll_seconds": stats.seconds,
            "xid_events": float(stats.xid_events),
            **(own() if callable(own) else {}),
        }


def xid_finding(source: str, reading: GpuReading, at: float) -> Finding:
    """One Xid event as a finding, worded as the classifier words a changed Xid."""
    xid = reading.xid or 0
    known = xid_class(xid)
    gpu = reading.gpu.label()
    return Finding(
        source=f"gpu/{source}",
        reason=known.reason,
        severity=known.severity,
        fault_class=known.fault_class,
        message=f"{gpu}: {xid_message(xid)}",
        at=at,
        evidence=(f"{gpu}: NVML event Xid {xid}",),
        gpu=gpu,
    )


def _summary(reading: GpuReading) -> dict[str, Any]:
    fields = asdict(reading)
    fields.pop("gpu")
    return {k: v for k, v in fields.items() if v not in (None, (), {})}


def _failure(failure: ToolFailure) -> dict[str, Any]:
    gpu = failure.gpu.label() if failure.gpu else None
    return {"problem": failure.problem.value, "detail": failure.detail, "gpu": gpu}


def _failed(source: str, problem: ToolProblem, detail: str) -> Snapshot:
    return Snapshot(source, failures=(ToolFailure(problem, detail),))
