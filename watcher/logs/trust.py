"""Whether inotify can be trusted for these files: a file that grows on the safety-net
tick twice in a row with no event for it (NFS, FUSE, some container file systems) means
it cannot, and the monitor polls at the short interval from then on."""

import logging

from watcher.logs.tail import FileId, Tail

log = logging.getLogger(__name__)

SILENT_TICKS = 2
"""Ticks in a row a file may grow without an event before we stop trusting inotify."""


class InotifyTrust:
    def __init__(self, fallback_interval: float) -> None:
        self._fallback_interval = fallback_interval
        self._evented: set[FileId] = set()
        self._silent: dict[FileId, int] = {}
        self.polling = False
        """True once inotify was caught missing changes: poll at the short interval."""

    def evented(self, tail: Tail) -> None:
        """An event came for ``tail`` since the last tick."""
        self._evented.add(tail.file_id)

    def ticked(self, tail: Tail, has_news: bool) -> None:
        """What the tick found of ``tail``: news with no event since the last tick counts
        toward the streak (an orphan gets no events by nature), none ends it."""
        if not has_news:
            self._silent.pop(tail.file_id, None)
        elif tail.file_id not in self._evented and tail.orphaned_at is None:
            self._note_silence(tail)

    def tick_done(self) -> None:
        self._evented.clear()

    def _note_silence(self, tail: Tail) -> None:
        streak = self._silent[tail.file_id] = self._silent.get(tail.file_id, 0) + 1
        if streak >= SILENT_TICKS and not self.polling:
            self.polling = True
            log.warning(
                "a file grows without inotify events; polling every %ss from now on",
                self._fallback_interval,
                extra={"fields": {"path": tail.path}},
            )
