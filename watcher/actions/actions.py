"""Carry out a decision: last words and an exit code, an eviction, a fail, a hold, a count.

The kubelet kills the other containers within 2 s of a restart-all, so everything worth
keeping is written before the exit. The ledger entry comes first and must succeed: a
restart the ledger cannot record would escape the budget, so it is not taken, and the
policy hears of it. The rest (termination message, read cursors, the launcher's verdict,
an Event, the Pod annotation) runs together; all of it, the ledger included, ends within
``timeout`` seconds of the decision, whatever the disk or the API server do.

What carrying out ran into (a refused eviction, an unwritable ledger) is not decided here:
it goes back to the policy as a finding (`Outcome.setback`).
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import replace
from typing import Any

from watcher.actions.annotate import Annotator
from watcher.actions.contract import ActionConfig, EventsDrain, GangHook, Outcome
from watcher.actions.entries import ledger_entry, log_fields
from watcher.actions.steps import blocking_step, left, together
from watcher.actions.termination import termination_message, write_termination_log
from watcher.blocking import call_with_deadline
from watcher.clock import Clock
from watcher.gang import reasons as gang
from watcher.kube.client import ApiError
from watcher.state.ledger import Ledger, LedgerEntry
from watcher.types import (
    ACTIONS,
    EVICTION_REFUSED,
    RESTART_NOT_RECORDED,
    Action,
    Decision,
    FaultClass,
    Finding,
    Severity,
)
from watcher.workload.shared import SharedDir

log = logging.getLogger(__name__)

TAKE_BACK_TIMEOUT = 0.5
"""Seconds to record that a restart will not happen after all (a SIGTERM came first)."""
RESTART_WAIT_MARGIN = 15.0
"""Seconds a launcher told "restart" waits beyond the back-off and the last words."""


class Actions:
    """Executes decisions. ``evict``, ``annotator``'s API and ``events`` exist only with
    API access, ``launcher`` only with the launcher in front of the workload."""

    def __init__(
        self,
        config: ActionConfig,
        *,
        ledger: Ledger,
        clock: Clock,
        save_cursors: Callable[[], Callable[[], object]],
        annotator: Annotator | None = None,
        events: EventsDrain | None = None,
        evict: Callable[[], Awaitable[None]] | None = None,
        launcher: SharedDir | None = None,
        gang: GangHook | None = None,
        before_exit: Callable[[], object] | None = None,
    ) -> None:
        """``before_exit``: called once an exit is certain, before the last words (it
        drops the inotify watches, whose release would otherwise slow the exit)."""
        self._config = config
        self._before_exit = before_exit
        self._gang = gang
        self._ledger = ledger
        self._clock = clock
        self._save_cursors = save_cursors
        self._annotator = annotator or Annotator()
        self._events = events
        self._evict = evict
        self._launcher = launcher

    async def carry_out(self, decision: Decision) -> Outcome:
        """Act on ``decision``."""
        if decision.verdict is not None:
            await self._verdict(decision, self._config.timeout)
        if decision.dry_run:  # the reporters said what would have happened
            return Outcome()
        if decision.action in (Action.RESTART, Action.FAIL):
            decision = await self._with_latest_start(decision)
        handlers: dict[Action, Callable[[Decision], Coroutine[Any, Any, Outcome]]] = {
            Action.RESTART: self._restart,
            Action.EVICT: self._evict_pod,
            Action.FAIL: self._fail,
            Action.HOLD: self._hold,
            Action.COUNT: self._count,
        }
        handler = handlers.get(decision.action)
        return Outcome() if handler is None else await handler(decision)

    async def _restart(self, decision: Decision) -> Outcome:
        if decision.delay_s > 0:
            log.warning(
                "restarting in %.1fs (back-off): %s",
                decision.delay_s,
                decision.explanation,
                extra={"fields": log_fields(decision)},
            )
            await asyncio.sleep(decision.delay_s)
        deadline = asyncio.get_running_loop().time() + self._config.timeout
        entry = self._entry(decision, exit_code=self._config.restart_exit_code)
        refused = await self._first_record(entry, deadline)
        if refused is not None:
            return Outcome(setback=refused)
        steps: list[Coroutine[Any, Any, None]] = []
        if self._gang is not None and not decision.details.get(gang.FOLLOW):
            steps.append(self._gang.early_write())  # the gang learns before this Pod restarts
        log.error(
            "exiting %d: %s",
            self._config.restart_exit_code,
            decision.explanation,
            extra={"fields": {**log_fields(decision), "ledger_id": entry.id}},
        )
        if self._before_exit is not None:  # from here on the watcher exits, 88 or 0
            self._before_exit()
        steps = [*steps, self._drain_events(deadline), self._annotate(decision, entry)]
        if decision.verdict is None:
            steps.append(self._verdict(replace(decision, verdict="restart"), left(deadline)))
        steps += self._files(decision, entry, deadline, cursors=True)
        try:
            await together(steps, deadline)
        except asyncio.CancelledError:  # SIGTERM during the last words: no restart after all
            await self._taken_back(decision, entry)
            raise
        return Outcome(exit_code=self._config.restart_exit_code)

    async def _taken_back(self, decision: Decision, entry: LedgerEntry) -> None:
        """The restart recorded a moment ago will not happen: say so in the ledger (the
        budget leaves it out) and in the termination message, within TAKE_BACK_TIMEOUT."""
        why = "stopped (SIGTERM) during the last words, before the exit: no restart"
        log.warning("%s: %s", why, decision.explanation)
        undo = LedgerEntry("not_taken", entry.reason, self._clock.wall(), why,
                           details={"ref": entry.id})  # fmt: skip
        path = self._config.termination_log
        message = f"pod-watcher: {why}\nwas: {decision.explanation}\n"

        def write() -> None:
            self._ledger.append(undo)
            if path is not None:
                write_termination_log(path, message)

        with contextlib.suppress(OSError, TimeoutError):
            await call_with_deadline(write, TAKE_BACK_TIMEOUT, "last-words-take-back")

    async def _first_record(self, entry: LedgerEntry, deadline: float) -> Finding | None:
        """Append the restart to the ledger, or say why it was not taken."""
        try:
            await call_with_deadline(
                lambda: self._ledger.append(entry), left(deadline), "last-words-ledger"
            )
        except (OSError, TimeoutError) as exc:
            problem = str(exc) or type(exc).__name__
            log.error("not restarting: the ledger cannot record it: %s", problem)
            message = (
                f"the ledger {self._ledger.path} cannot be written ({problem}): a restart it "
                "does not record would escape the restart budget, so it was not taken"
            )
            return self._setback(RESTART_NOT_RECORDED, message)
        return None

    async def _fail(self, decision: Decision) -> Outcome:
        log.error(
            "failing the Pod: %s", decision.explanation, extra={"fields": log_fields(decision)}
        )
        deadline = asyncio.get_running_loop().time() + self._config.timeout
        entry = self._entry(decision, exit_code=None)
        steps = [self._record(entry, deadline), self._annotate(decision, entry)]
        steps += self._files(decision, entry, deadline)
        start = decision.details.get("launcher_start")
        if decision.verdict is None and self._launcher is not None and isinstance(start, int):
            launcher, reason, grace = self._launcher, decision.explanation, self._config.stop_grace
            steps.append(
                self._blocking("stop", lambda: launcher.ask_stop(start, reason, grace), deadline)
            )
        await together(steps, deadline)
        return Outcome()

    async def _evict_pod(self, decision: Decision) -> Outcome:
        if self._evict is None:  # the policy never asks for it then
            return Outcome(setback=self._setback(EVICTION_REFUSED, "no Kubernetes API access"))
        await self._drain_events(asyncio.get_running_loop().time() + self._config.timeout)
        try:
            await self._evict()
        except ApiError as exc:
            return Outcome(setback=self._setback(EVICTION_REFUSED, f"the API refused: {exc}"))
        log.error(
            "evicting the Pod: %s", decision.explanation, extra={"fields": log_fields(decision)}
        )
        deadline = asyncio.get_running_loop().time() + self._config.timeout
        await self._record(self._entry(decision, exit_code=None), deadline)
        return Outcome()

    async def _hold(self, decision: Decision) -> Outcome:
        log.error("holding: %s", decision.explanation, extra={"fields": log_fields(decision)})
        deadline = asyncio.get_running_loop().time() + self._config.timeout
        entry = self._entry(decision, exit_code=None)
        await together([self._record(entry, deadline), self._annotate(decision, entry)], deadline)
        return Outcome()

    async def _count(self, decision: Decision) -> Outcome:
        """An in-place restart the watcher did not ask for: it counts in the budget."""
        log.warning("%s", decision.explanation, extra={"fields": log_fields(decision)})
        entry = self._entry(decision, exit_code=None, action="restart")
        deadline = asyncio.get_running_loop().time() + self._config.timeout
        await self._record(entry, deadline)
        return Outcome()

    # -- the pieces ------------------------------------------------------------------

    def _files(
        self, decision: Decision, entry: LedgerEntry, deadline: float, *, cursors: bool = False
    ) -> list[Coroutine[Any, Any, None]]:
        steps = []
        if cursors:
            steps.append(self._blocking("cursors", self._save_cursors(), deadline))
        path = self._config.termination_log
        if path is not None:
            message = termination_message(decision, entry, self._ledger.path)
            steps.append(
                self._blocking(
                    "termination log", lambda: write_termination_log(path, message), deadline
                )
            )
        return steps

    async def _verdict(self, decision: Decision, limit: float) -> None:
        """Tell the launcher what becomes of the exited (or exiting) workload."""
        start = decision.finding.facts.get("start", decision.details.get("launcher_start"))
        if self._launcher is None or not isinstance(start, int) or decision.verdict is None:
            return
        wait = None
        if decision.verdict == "restart":
            wait = decision.delay_s + self._config.timeout + RESTART_WAIT_MARGIN
        launcher, verdict, reason = self._launcher, decision.verdict, decision.explanation
        deadline = asyncio.get_running_loop().time() + limit
        await self._blocking(
            "verdict", lambda: launcher.give_verdict(start, verdict, reason, wait), deadline
        )

    async def _with_latest_start(self, decision: Decision) -> Decision:
        """Stamp ``decision`` with the launcher's newest start: a log line of start N can
        be decided on before the watcher has seen start N begin, and a restart recorded
        against start N-1 would later look like one the watcher did not ask for."""
        known = decision.details.get("launcher_start")
        if self._launcher is None or "start" in decision.finding.facts:
            return decision
        try:
            latest = await call_with_deadline(
                self._launcher.latest_start, self._config.timeout / 4, "launcher-start"
            )
        except (OSError, TimeoutError) as exc:
            log.warning("the launcher's records cannot be read: %s", exc)
            return decision
        if latest is None or (isinstance(known, int) and latest <= known):
            return decision
        return replace(decision, details={**decision.details, "launcher_start": latest})

    async def _annotate(self, decision: Decision, entry: LedgerEntry) -> None:
        """The Pod's annotations; for a restart this Pod decided in a gang, the same patch
        carries the gang's early write. A Pod following its gang writes nothing: the one
        that decided did."""
        if decision.details.get(gang.FOLLOW):
            return
        extra: Mapping[str, str] = {}
        if self._gang is not None and decision.action is Action.RESTART:
            extra = self._gang.early_annotations()
        await self._annotator.annotate(decision, entry, self._restart_number(decision), extra)

    async def _drain_events(self, deadline: float) -> None:
        if self._events is not None:
            await self._events(left(deadline))

    def _restart_number(self, decision: Decision) -> int | None:
        used = decision.details.get("restarts_in_window")
        return int(used) + 1 if isinstance(used, int) else None

    async def _record(self, entry: LedgerEntry, deadline: float) -> None:
        await self._blocking("ledger", lambda: self._ledger.append(entry), deadline)

    async def _blocking(self, name: str, fn: Callable[[], object], deadline: float) -> None:
        await blocking_step(name, fn, deadline, self._config.timeout)

    def _setback(self, reason: str, message: str) -> Finding:
        return Finding(
            source=ACTIONS,
            reason=reason,
            severity=Severity.FATAL,
            fault_class=FaultClass.INFRASTRUCTURE,
            message=message,
            at=self._clock.monotonic(),
            evidence=(message,),
        )

    def _entry(self, decision: Decision, exit_code: int | None, action: str = "") -> LedgerEntry:
        marks = self._gang_marks(decision)
        return ledger_entry(decision, self._clock.wall(), exit_code, action, marks)

    def _gang_marks(self, decision: Decision) -> dict[str, object]:
        """The gang restart a restart this Pod decided makes (the budget counts it once)."""
        if self._gang is None or decision.action is not Action.RESTART:
            return {}
        if gang.GENERATION in decision.details:
            return {}
        return {gang.GANG_KEY: self._gang.key, gang.GENERATION: self._gang.next_generation()}
