"""Carry out a decision. A restart means last words, each under a deadline, then an exit code.

The kubelet kills the other containers without a grace period, so everything worth
keeping is written before the exit: the ledger entry (the restart budget's memory), the
termination message (what people read), the read cursors. A step that fails or hangs
is logged and skipped; the exit happens anyway, within ``timeout`` seconds.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watcher.actions.termination import termination_message, write_termination_log
from watcher.blocking import call_with_deadline
from watcher.clock import Clock
from watcher.state.ledger import Ledger, LedgerEntry
from watcher.types import Action, Decision

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ActionConfig:
    restart_exit_code: int
    termination_log: Path | None
    timeout: float
    """Deadline for all last words together."""


class Actions:
    """Executes decisions; returns the exit code when the process should end.

    ``save_cursors`` takes a snapshot on the loop and returns the blocking write.
    """

    def __init__(
        self,
        config: ActionConfig,
        *,
        ledger: Ledger,
        clock: Clock,
        save_cursors: Callable[[], Callable[[], object]],
    ) -> None:
        self._config = config
        self._ledger = ledger
        self._clock = clock
        self._save_cursors = save_cursors
        self._held = False

    async def carry_out(self, decision: Decision) -> int | None:
        """Act on ``decision``; the exit code to end with, or None to keep watching."""
        if decision.dry_run:  # the status board logs what would have happened
            return None
        if decision.action is Action.RESTART:
            await self.last_words(decision)
            return self._config.restart_exit_code
        if decision.action is Action.HOLD and not self._held:
            self._held = True
            log.error("holding: %s", decision.explanation, extra={"fields": _fields(decision)})
            await self._record(self._entry(decision, exit_code=None))
        return None

    async def last_words(self, decision: Decision) -> None:
        """Ledger entry, termination message and cursors, together within the deadline."""
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
        await asyncio.gather(*steps)

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
