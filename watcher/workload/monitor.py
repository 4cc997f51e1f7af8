"""The workload monitor: the launcher's starts and the command's exits, as findings.

It follows ``run/launcher.jsonl`` with inotify (a safety-net re-read every
``poll_interval`` as for logs). At start it reports the whole history once: every start
(the policy counts each in-place restart once, against the ledger) and an exit of the
current start that no verdict answers yet (the watcher that should have answered died).
Before it reports an exit it lets the log monitor catch up, so the command's last lines
(read from the same kernel page cache, written before the exit record) reach the policy
first: a fatal line explains the exit rather than following it.
"""

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from watcher.blocking import call_with_deadline
from watcher.clock import Clock
from watcher.logs.evidence import evidence_line
from watcher.logs.globs import WatchRoot
from watcher.logs.watch import Changes, Deliver, FsWatcher, InotifyWatcher
from watcher.monitor import Emit
from watcher.timers import loop_time, next_beat, wait_until
from watcher.types import WORKLOAD, WORKLOAD_STARTED, FaultClass, Finding, Severity
from watcher.workload.exits import explain_exit
from watcher.workload.shared import LauncherEvent, SharedDir

log = logging.getLogger(__name__)

CatchUp = Callable[[], Awaitable[None]]
WatcherFactory = Callable[[asyncio.AbstractEventLoop, Deliver], FsWatcher]
CATCH_UP_TIMEOUT = 1.0
"""Most seconds an exit waits for the log monitor to read the command's last lines."""
LAST_LINES = 20
TAIL_BYTES = 16 << 10
"""How much of the end of the workload's log an exit finding quotes, at most."""
TAIL_TIMEOUT = 1.0


class WorkloadMonitor:
    name = WORKLOAD

    def __init__(
        self,
        shared: SharedDir,
        clock: Clock,
        *,
        poll_interval: float,
        final_codes: Collection[int] = (),
        catch_up: CatchUp | None = None,
        watcher_factory: WatcherFactory = InotifyWatcher,
    ) -> None:
        self._shared = shared
        self._clock = clock
        self._poll = poll_interval
        self._final_codes = frozenset(final_codes)
        self._catch_up = catch_up
        self._factory = watcher_factory
        self._wake = asyncio.Event()
        self._fs: FsWatcher | None = None
        self.ready = asyncio.Event()
        self.current: LauncherEvent | None = None
        """The latest start of the launcher."""
        self.last_exit: LauncherEvent | None = None
        self.starts_seen = 0

    async def run(self, emit: Emit) -> None:
        self._fs = self._factory(asyncio.get_running_loop(), self._on_changes)
        self._fs.set_roots([WatchRoot(str(self._shared.run), recursive=False)])
        self._fs.start()
        try:
            await self._history(self._shared.new_events(), emit)
            self.ready.set()
            tick = next_beat(loop_time(), self._poll)
            while True:
                await wait_until(tick, self._wake)
                self._wake.clear()
                if loop_time() >= tick:
                    tick = next_beat(loop_time(), self._poll)
                for event in self._shared.new_events():
                    await self._live(event, emit)
        finally:
            self._fs.stop()

    def _on_changes(self, changes: Changes) -> None:
        if str(self._shared.records) in changes.paths or changes.directories_changed:
            self._wake.set()

    async def _history(self, events: list[LauncherEvent], emit: Emit) -> None:
        for event in events:
            if event.event == "start":
                self._started(event, emit)
            else:
                self.last_exit = event
        current, exited = self.current, self.last_exit
        if current is None or exited is None or exited.start != current.start:
            return
        if self._shared.verdict(current.start) is None:
            log.info("the workload's last exit has no verdict yet: deciding now")
            await self._exited(exited, emit)

    async def _live(self, event: LauncherEvent, emit: Emit) -> None:
        if event.event == "start":
            self._started(event, emit)
        else:
            self.last_exit = event
            await self._exited(event, emit)

    def _started(self, event: LauncherEvent, emit: Emit) -> None:
        self.current = event
        self.starts_seen += 1
        command = event.fields.get("command")
        message = f"launcher start {event.start}"
        if isinstance(command, list):
            message += f": {' '.join(str(part) for part in command)[:300]}"
        facts = {"start": event.start, "time": event.time, "pid": event.fields.get("pid")}
        emit(self._finding(WORKLOAD_STARTED, message, Severity.INFO, facts=facts))

    async def _exited(self, event: LauncherEvent, emit: Emit) -> None:
        if self._catch_up is not None:
            try:
                async with asyncio.timeout(CATCH_UP_TIMEOUT):
                    await self._catch_up()
            except TimeoutError:
                log.warning("the log monitor did not catch up within %ss", CATCH_UP_TIMEOUT)
        code, number = event.fields.get("code"), event.fields.get("signal")
        meaning = explain_exit(
            code if isinstance(code, int) else None,
            number if isinstance(number, int) else None,
            self._final_codes,
        )
        facts = {
            "start": event.start,
            "time": event.time,
            "code": code,
            "signal": number,
            "status": event.status,
            "stopped": event.fields.get("stopped"),
            "error": event.fields.get("error"),
        }
        path = str(self._shared.log)
        try:
            lines = await call_with_deadline(lambda: _last_lines(path), TAIL_TIMEOUT, "tail")
        except TimeoutError:
            lines = ()
        emit(
            self._finding(
                meaning.reason,
                meaning.message,
                meaning.severity,
                fault_class=meaning.fault_class,
                facts=facts,
                evidence=(f"launcher start {event.start}: {meaning.message}", *lines),
            )
        )

    def _finding(
        self,
        reason: str,
        message: str,
        severity: Severity,
        *,
        fault_class: FaultClass = FaultClass.APPLICATION,
        facts: dict[str, Any],
        evidence: tuple[str, ...] = (),
    ) -> Finding:
        return Finding(
            source=self.name,
            reason=reason,
            severity=severity,
            fault_class=fault_class,
            message=message,
            at=self._clock.monotonic(),
            evidence=evidence or (message,),
            file=str(self._shared.log) if evidence else None,
            facts=facts,
        )

    def healthy(self) -> tuple[bool, str]:
        alive = self._fs is not None and self._fs.is_alive()
        return (True, "inotify") if alive or not self.ready.is_set() else (False, "no inotify")

    def up(self) -> bool:
        """Its source answers: the shared directory is there and inotify watches it."""
        return self.healthy()[0] and self._shared.run.is_dir()

    def status(self) -> dict[str, Any]:
        current, exited = self.current, self.last_exit
        return {
            "directory": str(self._shared.root),
            "launcher_start": None if current is None else current.start,
            "running": self._shared.launcher_running(),
            "last_exit": None if exited is None else dict(exited.fields),
            "starts_seen": self.starts_seen,
        }

    def counters(self) -> dict[str, float]:
        return {"starts": float(self.starts_seen)}


def _last_lines(path: str) -> tuple[str, ...]:
    """Up to LAST_LINES whole lines from the end of the workload's log (blocking)."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - TAIL_BYTES))
            data = handle.read(TAIL_BYTES)
    except OSError:
        return ()
    lines = data.split(b"\n")
    if len(data) == TAIL_BYTES:
        lines = lines[1:]  # the first one is cut
    kept = [line for line in lines if line.strip()][-LAST_LINES:]
    return tuple(evidence_line(line) for line in kept)
