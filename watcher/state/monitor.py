"""The state directory as a source: what could not be read or written, and a volume
filling up, reported in the log, /status, /metrics and as warning findings. A ledger
whose file vanished (the directory deleted while running) is written back from memory
at the next look, not only at the next entry.

It never fails the health check: a sick state volume is not cured by restarting the
sidecar. It never decides either: a restart the ledger cannot record is refused by
the caller of `Ledger.append`, which raises.
"""

import asyncio
import os
from typing import Any

from watcher.clock import Clock
from watcher.monitor import Emit
from watcher.state.cursors import CursorStore
from watcher.state.ledger import Ledger
from watcher.state.ledger_file import RESERVE_BYTES
from watcher.timers import loop_time, next_beat, wait_until
from watcher.types import FaultClass, Finding, Severity

INTERVAL = 10.0
"""Seconds between two looks (on the beat the log monitor's re-stat shares)."""
LOW = 4 * RESERVE_BYTES
"""Free bytes below which the state volume counts as full."""


class StateMonitor:
    """Looks at the ledger, the cursor file and the state volume."""

    name = "state"

    def __init__(self, ledger: Ledger, cursors: CursorStore, clock: Clock) -> None:
        self._ledger = ledger
        self._cursors = cursors
        self._clock = clock
        self._reported: set[str] = set()
        self._append_failures = 0
        self.ready = asyncio.Event()

    async def run(self, emit: Emit) -> None:
        self.ready.set()
        while True:
            self._ledger.ensure()
            for reason, message in self._problems():
                if reason not in self._reported:
                    self._reported.add(reason)
                    emit(self._finding(reason, message))
            await wait_until(next_beat(loop_time(), INTERVAL))

    def _problems(self) -> list[tuple[str, str]]:
        ledger, problems = self._ledger, []
        if ledger.read_error is not None:
            problems.append(
                (
                    "LedgerUnreadable",
                    f"the ledger cannot be read ({ledger.read_error}): "
                    "restarts are refused until it can",
                )
            )
        if ledger.skipped_lines:
            problems.append(
                (
                    "LedgerCorrupt",
                    f"{ledger.skipped_lines} ledger lines are not entries "
                    f"and were skipped: {'; '.join(ledger.skipped_examples[:2])}",
                )
            )
        if self._cursors.load_error is not None:
            problems.append(
                ("CursorsCorrupt", f"the read cursors were ignored: {self._cursors.load_error}")
            )
        free = self._free_bytes()
        if free is not None and free < LOW:
            problems.append(("StateVolumeFull", f"the state volume has {free} bytes free"))
        failures = ledger.file.failures
        if failures > self._append_failures:
            self._append_failures = failures
            self._reported.discard("LedgerWriteFailed")
            problems.append(
                ("LedgerWriteFailed", f"cannot record in the ledger: {ledger.file.last_error}")
            )
        return problems

    def _free_bytes(self) -> int | None:
        try:
            st = os.statvfs(self._ledger.path.parent)
        except OSError:
            return None
        return st.f_bavail * st.f_frsize

    def _finding(self, reason: str, message: str) -> Finding:
        return Finding(
            source=self.name,
            reason=reason,
            severity=Severity.WARNING,
            fault_class=FaultClass.INFRASTRUCTURE,
            message=message,
            at=self._clock.monotonic(),
            evidence=(message,),
        )

    def healthy(self) -> tuple[bool, str]:
        return True, "problems: " + ", ".join(sorted(self._reported)) if self._reported else "ok"

    def up(self) -> bool:
        """The state volume answers: no problem with the ledger or the cursors stands."""
        return not self._reported

    def status(self) -> dict[str, Any]:
        return {
            "ledger": self._ledger.status(),
            "cursors": self._cursors.status(),
            "volume_free_bytes": self._free_bytes(),
            "problems": sorted(self._reported),
        }

    def counters(self) -> dict[str, float]:
        ledger = self._ledger
        return {
            "ledger_skipped_lines": float(ledger.skipped_lines),
            "ledger_append_failures": float(ledger.file.failures),
            "ledger_restored": float(ledger.file.restored),
            "cursor_save_failures": float(self._cursors.save_failures),
        }
