"""The one writer of the read cursors.

Cursors are saved at three moments: every few seconds while logs flow, when the watcher
is ready (that records that this start saw the last restart) and on the way out (a
clean stop, or a restart's last words). Every save goes through the keeper: the snapshot
is taken on the event loop, numbered, and written off it; a write whose snapshot is
older than the last one written is skipped. Without that, a periodic save stuck on a slow
disk could land after the last words' save and take the cursors back to before the
restart was acknowledged, so the restarted watcher would read the fatal line again.
"""

import asyncio
import logging
import threading
from collections.abc import Callable

from watcher.blocking import call_with_deadline
from watcher.state.cursors import CursorSnapshot, CursorStore

log = logging.getLogger(__name__)

SAVE_INTERVAL = 5.0
"""Seconds between saves while the cursors move; none while they do not."""

Write = Callable[[], object]
"""A blocking write of one snapshot, to run off the event loop."""


class CursorKeeper:
    def __init__(self, take: Callable[[], CursorSnapshot], store: CursorStore) -> None:
        """``take`` reads where every file is (on the event loop)."""
        self._take = take
        self._store = store
        self._lock = threading.Lock()
        self._taken = 0
        self._written = 0

    def writer(self) -> Write:
        """Snapshot the cursors now and return the write, which does nothing if a later
        snapshot was written meanwhile. For callers with their own deadline (the last
        words)."""
        snapshot = self._take()
        self._taken += 1
        number = self._taken

        def write() -> bool:
            with self._lock:
                if self._written > number:
                    return False
                saved = self._store.save(snapshot)
                self._written = number
                return saved

        return write

    async def save(self, limit: float) -> bool:
        """Save now, within ``limit`` seconds; whether it was saved. A failure is logged
        (the store counts it for /status), never raised."""
        try:
            await call_with_deadline(self.writer(), limit, "cursors")
        except (OSError, TimeoutError) as exc:
            log.warning("cannot save read cursors: %s", exc)
            return False
        return True

    async def keep(self, moved: asyncio.Event, interval: float = SAVE_INTERVAL) -> None:
        """Save at most every ``interval`` seconds, and only after the cursors moved:
        an idle watcher never wakes up for this. Runs until cancelled."""
        while True:
            await moved.wait()
            moved.clear()
            await asyncio.sleep(interval)
            await self.save(interval)
