"""The cursor keeper: the one writer of the read cursors, on a real state directory."""

import asyncio
import threading
from pathlib import Path

from tests.waiting import until
from watcher.state.cursor_keeper import CursorKeeper
from watcher.state.cursors import Cursor, CursorSnapshot, CursorStore


class Where:
    """How far the log monitor read, as the keeper's ``take`` sees it."""

    def __init__(self) -> None:
        self.offset = 0
        self.acknowledged: str | None = None

    def take(self) -> CursorSnapshot:
        return CursorSnapshot({"/logs/a.log": Cursor(1, 2, self.offset)}, self.acknowledged)


def saved_offset(store_dir: Path) -> int:
    snapshot = CursorStore(store_dir).load()
    assert snapshot is not None
    return snapshot.files["/logs/a.log"].offset


def test_a_write_older_than_the_last_one_written_is_skipped(tmp_path: Path) -> None:
    """A periodic save that was slow and lands after the last words' save must not take
    the cursors (and the acknowledged restart) back."""
    where = Where()
    keeper = CursorKeeper(where.take, CursorStore(tmp_path))
    where.offset = 100
    periodic = keeper.writer()  # taken first, written last
    where.offset, where.acknowledged = 200, "restart-1"
    last_words = keeper.writer()
    assert last_words() is True
    assert periodic() is False
    assert saved_offset(tmp_path) == 200
    assert CursorStore(tmp_path).load().acknowledged_restart == "restart-1"  # type: ignore[union-attr]


def test_writes_from_two_threads_never_interleave(tmp_path: Path) -> None:
    where = Where()
    keeper = CursorKeeper(where.take, CursorStore(tmp_path))
    writes = []
    for offset in range(1, 41):
        where.offset = offset
        writes.append(keeper.writer())
    threads = [threading.Thread(target=w) for w in reversed(writes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert saved_offset(tmp_path) == 40  # the newest snapshot, whatever the order


async def test_keep_saves_only_after_the_cursors_moved(tmp_path: Path) -> None:
    where = Where()
    keeper = CursorKeeper(where.take, CursorStore(tmp_path))
    moved = asyncio.Event()
    task = asyncio.create_task(keeper.keep(moved, interval=0.05))
    try:
        await asyncio.sleep(0.2)
        assert CursorStore(tmp_path).load() is None  # nothing moved: nothing written
        where.offset = 7
        moved.set()
        await until(lambda: CursorStore(tmp_path).load() is not None, what="a save")
        assert saved_offset(tmp_path) == 7
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
