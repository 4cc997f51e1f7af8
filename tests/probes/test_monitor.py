"""The probe monitor against a real server: thresholds, streaks, schedule, /status."""

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from tests.probes.server import Reply, Target
from tests.waiting import until
from watcher.clock import SystemClock
from watcher.probes.monitor import ProbeMonitor
from watcher.probes.spec import ProbeSpec
from watcher.types import FaultClass, Finding, Severity

PERIOD = 0.05
FAST = {"periodSeconds": PERIOD, "timeoutSeconds": 0.04}


def http(target: Target, **fields: Any) -> ProbeSpec:
    return ProbeSpec.model_validate({"type": "http", "url": target.url, **FAST, **fields})


def tcp(port: int, **fields: Any) -> ProbeSpec:
    spec = {"type": "tcp", "host": "127.0.0.1", "port": port, **FAST, **fields}
    return ProbeSpec.model_validate(spec)


@dataclass
class Probing:
    monitor: ProbeMonitor
    findings: list[Finding]
    task: asyncio.Task[None]

    async def until(self, condition: Callable[[], object], limit: float = 5.0) -> None:
        await until(lambda: self.task.done() or condition(), limit)
        if self.task.done():
            self.task.result()
            raise AssertionError("the probe monitor stopped")

    def status(self, index: int = 0) -> dict[str, Any]:
        probes: list[dict[str, Any]] = self.monitor.status()["probes"]
        return probes[index]


@asynccontextmanager
async def probing(
    session: aiohttp.ClientSession | None, *specs: ProbeSpec
) -> AsyncIterator[Probing]:
    monitor = ProbeMonitor(specs, SystemClock(), session)
    findings: list[Finding] = []
    task = asyncio.create_task(monitor.run(findings.append), name="probe-monitor")
    try:
        await until(monitor.ready.is_set)
        yield Probing(monitor, findings, task)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_threshold_of_failures_makes_exactly_one_finding(
    target: Target, session: aiohttp.ClientSession
) -> None:
    target.answer(500)
    target.then(200)  # it worked once: from now on a run of failures is a fault
    spec = http(target, name="trainer", failureThreshold=3)
    async with probing(session, spec) as run:
        await run.until(lambda: run.findings)
        await run.until(lambda: len(target.requests) >= 11)
        assert len(run.findings) == 1, run.findings
        status = run.status()
    finding = run.findings[0]
    assert (finding.source, finding.reason) == ("probes", "ProbeFailed")
    assert finding.severity is Severity.FATAL
    assert finding.fault_class is FaultClass.HANG
    assert finding.message == "trainer failed 3 times in a row (failureThreshold 3, every 0.05s)"
    assert len(finding.evidence) == 3
    assert all(e.startswith("unexpected status 500") for e in finding.evidence)
    third, fourth = target.requests[3].at, target.requests[4].at
    assert third <= finding.at <= fourth, "reported on the third failure"
    assert third - target.requests[1].at < 2 * PERIOD + 0.05, "checks every period"
    assert status["reported"] is True
    assert status["failures_in_a_row"] >= 10
    assert status["time_left_s"] is None


async def test_a_probe_that_never_succeeded_only_warns(
    target: Target, session: aiohttp.ClientSession
) -> None:
    """A typo (a wrong port, an endpoint the trainer does not serve) never restarts the Pod:
    until the first success, a run of failures is a warning, once per run."""
    target.answer(404)
    async with probing(session, http(target, name="trainer", failureThreshold=2)) as run:
        await run.until(lambda: len(target.requests) >= 6)
        [warning] = run.findings
        target.answer(200)
        await run.until(lambda: run.status()["ok"] is True)
        target.answer(503)
        await run.until(lambda: len(run.findings) == 2)
    assert (warning.reason, warning.severity) == ("ProbeNeverSucceeded", Severity.WARNING)
    assert "has never succeeded" in warning.message
    fault = run.findings[1]
    assert (fault.reason, fault.severity) == ("ProbeFailed", Severity.FATAL)


async def test_one_success_resets_the_count(target: Target, session: aiohttp.ClientSession) -> None:
    target.then(500, 500, 200, 500, 500, 200, 500, 500)
    async with probing(session, http(target, failureThreshold=3)) as run:
        await run.until(lambda: len(target.requests) >= 12)
        assert run.findings == []
        assert run.status()["failures_in_a_row"] == 0
        assert run.status()["ok"] is True


async def test_success_threshold_re_arms_only_after_enough_successes(
    target: Target, session: aiohttp.ClientSession
) -> None:
    target.then(*[500] * 3, 200, *[500] * 3, 200, 200, *[500] * 3)
    spec = http(target, failureThreshold=3, successThreshold=2)
    async with probing(session, spec) as run:
        await run.until(lambda: len(target.requests) >= 16)
        assert len(run.findings) == 2, run.findings
        assert run.status()["successes_in_a_row"] >= 2
    requests = target.requests
    first, second = run.findings
    assert requests[2].at <= first.at <= requests[3].at
    assert requests[11].at <= second.at <= requests[12].at, "one success (index 3) re-arms nothing"


async def test_threshold_one_evidence_is_the_current_failure_only(
    target: Target, session: aiohttp.ClientSession
) -> None:
    target.then(500, 200, 503)
    async with probing(session, http(target, failureThreshold=1)) as run:
        await run.until(lambda: len(run.findings) == 2)
    first, second = (f.evidence for f in run.findings)
    assert len(first) == 1 and first[0].startswith("unexpected status 500")
    assert len(second) == 1, f"evidence of an earlier run of failures kept: {second}"
    assert second[0].startswith("unexpected status 503")


async def test_hang_and_refusal_are_failures(
    target: Target, session: aiohttp.ClientSession
) -> None:
    target.hang()
    spec = http(target, failureThreshold=2, periodSeconds=0.2, timeoutSeconds=0.1)
    async with probing(session, spec) as run:
        await run.until(lambda: run.findings and len(target.requests) >= 3)
        assert run.findings[0].evidence == ("timed out after 0.1s", "timed out after 0.1s")
        second, third = target.requests[1].at, target.requests[2].at  # both on beats
        assert 0.2 - 0.02 <= third - second <= 0.2 + 0.1, "a slow check keeps the rhythm"
    await target.stop()
    async with probing(session, http(target, failureThreshold=2)) as run:
        await run.until(lambda: run.findings)
        assert run.findings[0].evidence == ("connection refused", "connection refused")


async def test_initial_delay(target: Target, session: aiohttp.ClientSession) -> None:
    started = time.monotonic()
    async with probing(session, http(target, initialDelaySeconds=0.5)) as run:
        await until(lambda: time.monotonic() - started > 0.4)
        assert target.requests == []
        assert run.status()["last"] is None
        await run.until(lambda: target.requests)
        assert 0.5 <= target.requests[0].at - started < 0.8


async def test_tcp_probes_open_and_closed_port(target: Target) -> None:
    closed = Target()
    await closed.start()
    await closed.stop()
    specs = (tcp(target.port, name="open"), tcp(closed.port, name="closed", failureThreshold=2))
    async with probing(None, *specs) as run:
        await run.until(lambda: run.findings)
        await run.until(lambda: run.monitor.states[0].checks >= 3)
        assert [f.message.split()[0] for f in run.findings] == ["closed"]
        assert run.findings[0].evidence == ("connection refused",) * 2
        assert run.status(0)["ok"] is True
        assert run.status(0)["last"].startswith("connected in ")
        assert run.status(1)["ok"] is False


async def test_status_counts_down_to_the_report(
    target: Target, session: aiohttp.ClientSession
) -> None:
    target.then(200, Reply(500), Reply(500))
    target.hang()
    spec = http(target, failureThreshold=3, periodSeconds=0.5, timeoutSeconds=0.5)
    async with probing(session, spec) as run:
        await run.until(lambda: run.status()["failures_in_a_row"] == 2)
        status = run.status()
        assert status["probe"] == f"http {target.url}"
        assert status["ok"] is False
        assert status["last"].startswith("unexpected status 500")
        assert status["reported"] is False
        assert status["failures_before_report"] == 1
        assert 0.3 < status["time_left_s"] <= 0.5
        assert 0 <= status["last_success_age_s"] < 1.5
        counters = run.monitor.counters()
    assert counters == {"checks": 3.0, "check_failures": 2.0}


async def test_probes_of_one_period_share_beats(target: Target) -> None:
    """Different initial delays, same period: after the first check each, the two probes
    are due at the very same instant, a multiple of the period (one wake-up for both)."""
    specs = (tcp(target.port, name="a"), tcp(target.port, name="b", initialDelaySeconds=0.02))
    shared: set[float] = set()

    def three_shared_beats() -> bool:
        # a may stay a check ahead of b: each first check has its own next beat
        a, b = run.monitor.states
        if a.next_at is not None and a.next_at == b.next_at:
            shared.add(a.next_at)
        return len(shared) >= 3

    async with probing(None, *specs) as run:
        await run.until(three_shared_beats)
    assert all(at / PERIOD == pytest.approx(round(at / PERIOD), abs=1e-6) for at in shared)


async def test_a_slow_answer_keeps_the_rhythm(
    target: Target, session: aiohttp.ClientSession
) -> None:
    """Answers that take most of the period: a check still starts on every beat."""
    period = 0.2
    target.default = Reply(delay=0.13)
    spec = http(target, periodSeconds=period, timeoutSeconds=0.19)
    async with probing(session, spec) as run:
        await run.until(lambda: run.monitor.states[0].checks >= 6)
        assert run.status()["failures_in_a_row"] == 0
    starts = [r.at for r in target.requests][1:6]  # from the second check, on the beats
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(period * 0.5 < gap < period * 1.5 for gap in gaps), gaps
