"""What the log monitor observes for hang detection: when bytes arrive, the step counter.

The log monitor calls `LogActivity.on_block` for every block it scans; this only
records times and the last step number. Deciding that something is stuck is the
progress monitor's job.
"""

import asyncio
from typing import Any

from watcher.clock import Clock
from watcher.logs.lines import Block
from watcher.rules.regex import compile_pattern

WINDOW = 64 << 10
"""Bytes from the end of a block searched first for the latest step number."""


class LogActivity:
    """Times of the first and latest log bytes, and the latest step number seen."""

    def __init__(self, clock: Clock, progress_pattern: str | None = None) -> None:
        self._clock = clock
        self._pattern: Any = None
        if progress_pattern is not None:  # multi-line: ^ and $ mean a line's start and end
            self._pattern = compile_pattern(f"(?m){progress_pattern}")
        self.first_byte_at: float | None = None
        self.last_byte_at: float | None = None
        self.step: float | None = None
        self.step_text: str | None = None
        self.step_changed_at: float | None = None
        self.armed = asyncio.Event()
        """Set when a timer gets something to count from (first bytes, first step)."""
        self.wake_on_change = False
        """Set by the progress monitor after it reported a stall: wake it on the next bytes."""

    def on_block(self, block: Block) -> None:
        now = self._clock.monotonic()
        if self.first_byte_at is None:
            self.first_byte_at = now
            self.armed.set()
        self.last_byte_at = now
        if self._pattern is not None:
            self._note_step(block, now)
        if self.wake_on_change:
            self.wake_on_change = False
            self.armed.set()

    def _note_step(self, block: Block, now: float) -> None:
        found = self._last_number(block)
        if found is None:
            return
        value, text = found
        if self.step is None:
            self.armed.set()
        if value != self.step:  # up is progress; down is a restart from a checkpoint
            self.step, self.step_text, self.step_changed_at = value, text, now

    def _last_number(self, block: Block) -> tuple[float, str] | None:
        end = block.end
        start = max(0, end - WINDOW)
        while True:
            if start > 0:  # begin at a line start, never inside a number
                start = block.data.find(b"\n", start, end) + 1 or end
            last = None
            for match in self._pattern.finditer(block.data, start, end):
                last = match
            if last is not None:
                text = last.group(1).decode("ascii", "replace")
                try:
                    return float(text), text
                except ValueError:
                    return None
            if start == 0:
                return None
            end, start = min(start + WINDOW // 16, block.end), max(0, start - 4 * WINDOW)
