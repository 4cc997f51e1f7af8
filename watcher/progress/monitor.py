"""The progress monitor: report a hang when logs go silent, a step counter stops, or a
heartbeat file goes stale.

It sleeps until the earliest deadline among its checks, with no polling: new log
bytes only push deadlines later, so there is nothing to do until the earliest one
passes. Each stall is reported once; the check re-arms when progress resumes.
"""

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watcher.clock import Clock
from watcher.monitor import Emit
from watcher.progress.signals import LogActivity
from watcher.types import FaultClass, Finding, Severity


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

    def __init__(self, config: ProgressConfig, activity: LogActivity, clock: Clock) -> None:
        self._config = config
        self._activity = activity
        self._clock = clock
        self._started = clock.monotonic()
        self._checks = self._build_checks()
        self._fired: dict[str, object] = {}
        self._last: dict[str, _Due] = {}
        self._heartbeat_found = False
        """The heartbeat file was there at the last look."""
        self.ready = asyncio.Event()

    async def run(self, emit: Emit) -> None:
        self.ready.set()
        while True:
            now = self._clock.monotonic()
            wake = None
            for name, check in self._checks.items():
                due = self._last[name] = check(now)
                if due.at is None:
                    continue
                if due.at <= now and self._fired.get(name) != due.key:
                    self._fired[name] = due.key
                    emit(self._finding(due, now))
                at = due.at if due.at > now else self._recheck(name, now)
                if at is not None:
                    wake = at if wake is None else min(wake, at)
            await self._sleep(None if wake is None else wake - now)

    def _recheck(self, name: str, now: float) -> float | None:
        """After a stall was reported: when to look again. New log bytes wake us anyway;
        a heartbeat file sends no signal, so it is looked at again every timeout."""
        self._activity.wake_on_change = True
        if name == "heartbeat":
            return now + (self._config.heartbeat_timeout or 0.0)
        return None

    async def _sleep(self, seconds: float | None) -> None:
        self._activity.armed.clear()
        try:
            async with asyncio.timeout(seconds):
                await self._activity.armed.wait()  # something new to count from
        except TimeoutError:
            pass

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

    def _not_before(self, at: float) -> float:
        return max(at, self._started + (self._config.startup_grace or 0.0))

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
        return _Due(self._not_before(last + timeout), last, "LogSilence", message)

    def _step(self, now: float) -> _Due:
        changed = self._activity.step_changed_at
        if changed is None:
            return self._never_started("step")
        timeout = self._config.progress_timeout or 0.0
        message = (
            f"progress stuck at {self._activity.step_text} for {now - changed:.1f}s "
            f"(progress timeout {timeout:g}s)"
        )
        return _Due(self._not_before(changed + timeout), changed, "ProgressStalled", message)

    def _heartbeat(self, now: float) -> _Due:
        path, timeout = self._config.heartbeat_file, self._config.heartbeat_timeout or 0.0
        try:
            mtime_ns = os.stat(path or "").st_mtime_ns  # the key: stable across clock steps
        except OSError:
            self._heartbeat_found = False
            due = self._never_started(f"heartbeat file {path}")
            if due.at is None:  # look again later, the workload may create it
                return _Due(now + timeout, "missing", "", "")
            return due
        self._heartbeat_found = True
        age = self._clock.wall() - mtime_ns / 1e9
        touched = now - age
        message = f"heartbeat file {path} not touched for {age:.1f}s (timeout {timeout:g}s)"
        return _Due(self._not_before(touched + timeout), mtime_ns, "HeartbeatStale", message)

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
        }

    def counters(self) -> dict[str, float]:
        return {}


def _age(now: float, at: float | None) -> float | None:
    return None if at is None else now - at
