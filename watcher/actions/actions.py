"""Carry out a decision. A restart means last words, each under a deadline, then an exit code.

The kubelet kills the other containers without a grace period, so everything worth
keeping is written before the exit: the ledger entry (the restart budget's memory), the
termination message (what people read), the read cursors, and an Event on the Pod when
the API is there. A step that fails or hangs is logged and skipped; the exit happens
anyway, within ``timeout`` seconds.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

from watcher.actions.termination import termination_message, write_termination_log
from watcher.blocking import call_with_deadline
from watcher.clock import Clock
from watcher.kube.client import ApiError
from watcher.kube.events import EventPoster, PodEvent, event_for
from watcher.state.ledger import Ledger, LedgerEntry
from watcher.types import Action, Decision

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActionConfig:
    restart_exit_code: int
    termination_log: Path | None
    timeout: float
    """Deadline for all last words together."""


@dataclass(frozen=True)
class Outcome:
    """What carrying out a decision led to."""

    exit_code: int | None = None
    """End the process with this code."""
    held: Decision | None = None
    """The watcher now holds (acting no more), for this reason."""


class Actions:
    """Executes decisions.

    ``save_cursors`` takes a snapshot on the loop and returns the blocking write;
    ``events`` and ``evict`` exist only with Kubernetes API access.
    """

    def __init__(
        self,
        config: ActionConfig,
        *,
        ledger: Ledger,
        clock: Clock,
        save_cursors: Callable[[], Callable[[], object]],
        events: EventPoster | None = None,
        evict: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._config = config
        self._ledger = ledger
        self._clock = clock
        self._save_cursors = save_cursors
        self._events = events
        self._evict = evict
        self._held = False
        self._background: set[asyncio.Task[bool]] = set()

    async def carry_out(self, decision: Decision) -> Outcome:
        """Act on ``decision``."""
        if decision.dry_run:  # the status board logs what would have happened
            self._announce_later(decision)
            return Outcome()
        if decision.action is Action.RESTART:
            await self.last_words(decision)
            return Outcome(exit_code=self._config.restart_exit_code)
        if decision.action is Action.EVICT:
            return await self._evict_pod(decision)
        if decision.action is Action.HOLD:
            return await self._hold(decision)
        self._announce_later(decision)
        return Outcome()

    async def last_words(self, decision: Decision) -> None:
        """Ledger entry, termination message, cursors and Event, together within the deadline."""
        entry = self._entry(decision, exit_code=self._config.restart_exit_code)
        log.error(
            "exiting %d: %s",
            self._config.restart_exit_code,
            decision.explanation,
            extra={"fields": {**_fields(decision), "ledger_id": entry.id}},
        )
        steps = [self._record(entry), self._step("cursors", self._save_cursors())]
        if self._config.termination_log is not None:
            message = termination_message(decision, entry, self._ledger.path)
            path = self._config.termination_log
            steps.append(
                self._step("termination log", lambda: write_termination_log(path, message))
            )
        steps.append(self._announce(decision))
        await asyncio.gather(*steps)

    async def _evict_pod(self, decision: Decision) -> Outcome:
        if self._evict is None:
            return await self._hold(replace(decision, action=Action.HOLD))
        await self._announce(decision)
        try:
            await self._evict()
        except ApiError as exc:
            why = f"{decision.explanation}; the eviction was refused ({exc}): holding"
            held = replace(decision, action=Action.HOLD, explanation=why)
            await self._post(PodEvent("EvictionRefused", why, key=decision.finding.reason))
            return await self._hold(held)
        log.error("evicting the Pod: %s", decision.explanation, extra={"fields": _fields(decision)})
        await self._record(self._entry(decision, exit_code=None))
        self._held = True
        return Outcome(held=decision)

    async def _hold(self, decision: Decision) -> Outcome:
        if not self._held:
            self._held = True
            log.error("holding: %s", decision.explanation, extra={"fields": _fields(decision)})
            await asyncio.gather(
                self._record(self._entry(decision, exit_code=None)), self._announce(decision)
            )
        return Outcome(held=decision)

    async def _announce(self, decision: Decision) -> None:
        event = event_for(decision, self._config.restart_exit_code)
        if event is not None:
            await self._post(event)

    def _announce_later(self, decision: Decision) -> None:
        event = event_for(decision, self._config.restart_exit_code)
        if event is not None and self._events is not None:
            task = asyncio.create_task(self._events.post(event), name="event")
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Cancel Events still being posted in the background."""
        for task in list(self._background):
            task.cancel()
        if self._background:
            await asyncio.wait(self._background, timeout=1.0)

    async def _post(self, event: PodEvent) -> None:
        if self._events is not None:
            await self._events.post(event)  # bounded by the API deadline, never raises

    async def _record(self, entry: LedgerEntry) -> None:
        await self._step("ledger", lambda: self._ledger.append(entry))

    async def _step(self, name: str, fn: Callable[[], object]) -> None:
        try:
            await call_with_deadline(fn, self._config.timeout, name=f"last-words-{name}")
        except TimeoutError:
            log.error("last words: %s timed out after %ss", name, self._config.timeout)
        except OSError as exc:
            log.error("last words: %s failed: %s", name, exc)

    def _entry(self, decision: Decision, exit_code: int | None) -> LedgerEntry:
        finding = decision.finding
        return LedgerEntry(
            action=decision.action.value,
            reason=finding.reason,
            time=self._clock.wall(),
            explanation=decision.explanation,
            fault_class=finding.fault_class.value,
            evidence=finding.evidence,
            file=finding.file,
            offset=finding.offset,
            exit_code=exit_code,
            details=dict(decision.details),
        )


def _fields(decision: Decision) -> dict[str, object]:
    finding = decision.finding
    return {
        "action": decision.action.value,
        "reason": finding.reason,
        "fault_class": finding.fault_class.value,
        "file": finding.file,
        "offset": finding.offset,
        "evidence": list(finding.evidence),
    }
