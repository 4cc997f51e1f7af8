"""The state directory's troubles are told: warning findings, /status, counters."""

import asyncio
import contextlib
import json
import shutil
from pathlib import Path

from tests.conftest import FakeClock
from tests.state.volumes import fill, make_eio, small_volume
from tests.waiting import until
from watcher.state.cursors import CursorStore
from watcher.state.ledger import Ledger, LedgerEntry
from watcher.state.monitor import StateMonitor
from watcher.types import Finding, Severity


async def findings_of(monitor: StateMonitor) -> list[Finding]:
    found: list[Finding] = []
    task = asyncio.create_task(monitor.run(found.append))
    try:
        await until(monitor.ready.is_set)
        await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return found


async def test_corrupt_state_is_reported_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "ledger.jsonl").write_text("null\n42\n", "utf-8")
    (tmp_path / "cursors.json").write_text("[]", "utf-8")
    clock = FakeClock()
    ledger = Ledger(tmp_path, clock=clock, boot_id="b")
    ledger.load()
    store = CursorStore(tmp_path)
    store.load()
    monitor = StateMonitor(ledger, store, clock)
    found = await findings_of(monitor)
    assert sorted(f.reason for f in found) == ["CursorsCorrupt", "LedgerCorrupt"]
    assert all(f.severity is Severity.WARNING for f in found)
    assert monitor.healthy() == (True, "problems: CursorsCorrupt, LedgerCorrupt")
    status = monitor.status()
    assert status["ledger"]["skipped_lines"] == 2
    assert status["cursors"]["load_error"].startswith("not cursors")
    assert monitor.counters()["ledger_skipped_lines"] == 2
    json.dumps(status)


async def test_an_unreadable_ledger_and_a_full_volume_are_reported(tmp_path: Path) -> None:
    with small_volume(tmp_path / "state") as state:
        make_eio(state / "ledger.jsonl")
        clock = FakeClock()
        ledger = Ledger(state, clock=clock, boot_id="b")
        ledger.load()
        fill(state)
        monitor = StateMonitor(ledger, CursorStore(state), clock)
        found = await findings_of(monitor)
        assert sorted(f.reason for f in found) == ["LedgerUnreadable", "StateVolumeFull"]
        assert monitor.status()["volume_free_bytes"] == 0


async def test_a_failed_append_is_reported(tmp_path: Path) -> None:
    clock = FakeClock()
    state = tmp_path / "state"
    state.mkdir()
    ledger = Ledger(state, clock=clock, boot_id="b")
    ledger.load()
    state.rename(tmp_path / "gone")
    (tmp_path / "state").write_text("a file where the directory was")
    with contextlib.suppress(OSError):
        ledger.append(LedgerEntry("restart", "R", clock.wall()))
    monitor = StateMonitor(ledger, CursorStore(state), clock)
    found = await findings_of(monitor)
    assert [f.reason for f in found] == ["LedgerWriteFailed"]
    assert monitor.counters()["ledger_append_failures"] == 1


async def test_a_vanished_ledger_is_written_back_at_the_next_look(tmp_path: Path) -> None:
    clock = FakeClock()
    state = tmp_path / "state"
    state.mkdir()
    ledger = Ledger(state, clock=clock, boot_id="b")
    ledger.load()
    ledger.append(LedgerEntry("restart", "One", clock.wall()))
    shutil.rmtree(state)
    await findings_of(StateMonitor(ledger, CursorStore(state), clock))
    assert [
        json.loads(line)["reason"] for line in (state / "ledger.jsonl").read_text().splitlines()
    ] == ["One"]
