"""The progress monitor: report a hang when logs go silent, a step counter stops, or a
heartbeat file goes stale.

It sleeps until the earliest deadline among its checks, with no polling: new log
bytes only push deadlines later, so there is nothing to do until the earliest one
passes. Each stall is reported once; the check re-arms when progress resumes.

A stall of the watcher itself (SIGSTOP, a cgroup freezer, CPU throttling, node
pressure) is not the workload's. Before any verdict the monitor has the log source
catch up (re-stat the files, read what they gained); and when it wakes up late by
`LATE` seconds or more, the watcher was not running, so every check counts again from
that moment: a real hang is still reported, one timeout after the watcher resumed.

Wall-clock facts (a heartbeat file's mtime) are put on the monotonic clock when they
arrive: a new mtime is "touched that long ago", or "touched now" if it lies in the
future (the clock was stepped back). A later clock step moves no deadline.
"""

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watcher.clock import Clock
from watcher.monitor import Emit
from watcher.progress.signals import LogActivity
from watcher.types import FaultClass, Finding, Severity

LATE = 1.0
"""Seconds the monitor may wake up after its deadline before it counts as a stall of
the watcher itself (event-loop jitter on a loaded node stays well below)."""
MIN_RECHECK = 0.05
"""Shortest wait between two looks at a heartbeat file, whatever its timeout."""


@dataclass(frozen=True)
class ProgressConfig:
    silence_timeout: float | None = None
    startup_grace: float | None = None
    progress_timeout: float | None = None
    heartbeat_file: Path | None = None
    heartbeat_timeout: float | None = None

    @property
    def enabled(self) -> bool:
        return any((self.silence_timeout, self.progress_timeout, self.heartbeat_file is not None))


@dataclass(frozen=True)
class _Due:
    """When a check fires, and about what."""

    at: float | None
    """Monotonic deadline; None: nothing to count from yet."""
    key: object
    """What this deadline counts from; a check fires once per key."""
    reason: str
    message: str


_Check = Callable[[float], _Due]


class ProgressMonitor:
    name = "progress"

    def __init__(
        self,
        config: ProgressConfig,
        activity: LogActivity,
        clock: Clock,
        catch_up: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``catch_up`` reads what the log files gained, so that a hang verdict waits for
        the lines that may already disprove it (the log monitor's)."""
        self._config = config
        self._activity = activity
        self._catch_up = catch_up
        self._clock = clock
        self._started = clock.monotonic()
        self._checks = self._build_checks()
        self._fired: dict[str, object] = {}
        self._last: dict[str, _Due] = {}
        self._heartbeat_found = False
        """The heartbeat file was there at the last look."""
        self._resumed_at: float | None = None
        """When the watcher last resumed after a stall of its own."""
        self._heartbeat_seen: tuple[int, float] | None = None
        """The heartbeat's mtime (ns) and when, on the monotonic clock, it was touched."""
        self.stalls = 0
        """Times the watcher itself was found stalled (woke up `LATE` or later)."""
        self.ready = asyncio.Event()

    async def run(self, emit: Emit) -> None:
        self.ready.set()
        caught_up = False
        while True:
            now = self._clock.monotonic()
            due, wake = self._evaluate(now)
            if due and not caught_up and self._catch_up is not None:
                await self._catch_up()  # the verdict waits for the sources
                caught_up = True
                continue
            caught_up = False
            for name, check in due:
                self._fired[name] = check.key
                emit(self._finding(check, now))
            late = await self._sleep(None if wake is None else wake - now)
            if late >= LATE:
                self._resumed_at = self._clock.monotonic()
                self.stalls += 1

    def _evaluate(self, now: float) -> tuple[list[tuple[str, _Due]], float | None]:
        """The checks due now (not yet reported), and when to look next."""
        due: list[tuple[str, _Due]] = []
        wake = None
        for name, check in self._checks.items():
            current = self._last[name] = check(now)
            if current.at is None:
                continue
            if current.at <= now and current.reason and self._fired.get(name) != current.key:
                due.append((name, current))
            at = current.at if current.at > now else self._recheck(name, now)
            if at is not None:
                wake = at if wake is None else min(wake, at)
        return due, wake

    def _recheck(self, name: str, now: float) -> float | None:
        """After a stall was reported: when to look again. New log bytes wake us anyway;
        a heartbeat file sends no signal, so it is looked at again every timeout."""
        self._activity.wake_on_change = True
        if name == "heartbeat":
            return now + max(self._config.heartbeat_timeout or 0.0, MIN_RECHECK)
        return None

    async def _sleep(self, seconds: float | None) -> float:
        """Wait ``seconds`` or until something new arrives; returns how late the loop
        woke up after the deadline (0 when woken early)."""
        self._activity.armed.clear()
        loop = asyncio.get_running_loop()
        planned = None if seconds is None else loop.time() + seconds
        try:
            async with asyncio.timeout(seconds):
                await self._activity.armed.wait()  # something new to count from
        except TimeoutError:
            return 0.0 if planned is None else max(0.0, loop.time() - planned)
        return 0.0

    def _build_checks(self) -> dict[str, _Check]:
        config = self._config
        checks: dict[str, _Check] = {}
        if config.silence_timeout is not None:
            checks["silence"] = self._silence
        if config.progress_timeout is not None:
            checks["step"] = self._step
        if config.heartbeat_file is not None:
            checks["heartbeat"] = self._heartbeat
        return checks

    def _not_before(self, at: float, timeout: float) -> float:
        """``at``, but never within the startup grace, nor within ``timeout`` of the
        watcher resuming from a stall of its own."""
        at = max(at, self._started + (self._config.startup_grace or 0.0))
        return at if self._resumed_at is None else max(at, self._resumed_at + timeout)

    def _never_started(self, what: str) -> _Due:
        grace = self._config.startup_grace
        if grace is None:
            return _Due(None, "start", "", "")
        reason = {"log output": "NoLogOutput", "step": "NoProgress"}.get(what, "HeartbeatMissing")
        return _Due(self._started + grace, "start", reason, f"no {what} within {grace:g}s of start")

    def _silence(self, now: float) -> _Due:
        last = self._activity.last_byte_at
        if last is None:
            return self._never_started("log output")
        timeout = self._config.silence_timeout or 0.0
        message = f"no new log output for {now - last:.1f}s (silence timeout {timeout:g}s)"
        return _Due(self._not_before(last + timeout, timeout), last, "LogSilence", message)

    def _step(self, now: float) -> _Due:
        changed = self._activity.step_changed_at
        if changed is None:
            return self._never_started("step")
        timeout = self._config.progress_timeout or 0.0
        message = (
            f"progress stuck at {self._activity.step_text} for {now - changed:.1f}s "
            f"(progress timeout {timeout:g}s)"
        )
        at = self._not_before(changed + timeout, timeout)
        return _Due(at, changed, "ProgressStalled", message)

    def _heartbeat(self, now: float) -> _Due:
        path, timeout = self._config.heartbeat_file, self._config.heartbeat_timeout or 0.0
        try:
            mtime_ns = os.stat(path or "").st_mtime_ns  # the key: stable across clock steps
        except OSError:
            self._heartbeat_found = False
            due = self._never_started(f"heartbeat file {path}")
            if due.at is None:  # look again later, the workload may create it
                return _Due(now + max(timeout, MIN_RECHECK), "missing", "", "")
            return due
        self._heartbeat_found = True
        touched = self._touched(mtime_ns, now)
        message = (
            f"heartbeat file {path} not touched for {now - touched:.1f}s (timeout {timeout:g}s)"
        )
        return _Due(
            self._not_before(touched + timeout, timeout), mtime_ns, "HeartbeatStale", message
        )

    def _touched(self, mtime_ns: int, now: float) -> float:
        """When the heartbeat was touched, on the monotonic clock, fixed when a new
        mtime is first seen: a clock step afterwards moves nothing."""
        seen = self._heartbeat_seen
        if seen is None or seen[0] != mtime_ns:
            age = self._clock.wall() - mtime_ns / 1e9
            seen = self._heartbeat_seen = (mtime_ns, now - age if age > 0 else now)
        return seen[1]

    def _finding(self, due: _Due, now: float) -> Finding:
        return Finding(
            source=self.name,
            reason=due.reason,
            severity=Severity.FATAL,
            fault_class=FaultClass.HANG,
            message=due.message,
            at=now,
            evidence=(due.message,),
        )

    def healthy(self) -> tuple[bool, str]:
        return True, ", ".join(self._checks) or "no checks"

    def up(self) -> bool:
        """Every check has what it counts from: log bytes, a step, the heartbeat file."""
        activity = self._activity
        found = {
            "silence": activity.last_byte_at is not None,
            "step": activity.step_changed_at is not None,
            "heartbeat": self._heartbeat_found,
        }
        return all(found[name] for name in self._checks)

    def status(self) -> dict[str, Any]:
        now = self._clock.monotonic()
        checks = {}
        for name, due in self._last.items():
            checks[name] = {
                "armed": due.at is not None,
                "time_left_s": None if due.at is None else max(0.0, due.at - now),
                "fired": self._fired.get(name) == due.key and due.at is not None,
                "would_report": due.reason or None,
            }
        activity = self._activity
        return {
            "checks": checks,
            "last_log_bytes_age_s": _age(now, activity.last_byte_at),
            "step": activity.step_text,
            "step_unchanged_for_s": _age(now, activity.step_changed_at),
            "watcher_stalls": self.stalls,
        }

    def counters(self) -> dict[str, float]:
        return {}


def _age(now: float, at: float | None) -> float | None:
    return None if at is None else now - at
