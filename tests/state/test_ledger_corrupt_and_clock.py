"""Ledger lines that are not entries, and ages that survive a stepped wall clock."""

import json
from pathlib import Path

import pytest

from tests.conftest import FakeClock
from watcher.state.cursors import CursorStore
from watcher.state.ledger import Ledger, LedgerEntry

GOOD = LedgerEntry("restart", "Good", time=1_800_000_500.0)
BAD_LINES = [
    "null",
    "42",
    '"restart"',
    "[1, 2]",
    '{"action": "restart", "reason": "R", "time": "2026-11-26T10:00:00Z"}',
    '{"action": "restart", "reason": "R", "time": NaN}',
    '{"action": "restart", "reason": "R", "time": 1e999}',
    '{"action": "restart", "reason": "R", "time": true}',
    '{"action": 7, "reason": "R", "time": 1.0}',
    '{"action": "restart", "reason": "R", "time": 1.0, "evidence": "one line"}',
    '{"action": "restart", "reason": "R", "time": 1.0, "evidence": [1]}',
    '{"action": "restart", "reason": "R", "time": 1.0, "offset": "12"}',
    '{"action": "restart", "reason": "R", "time": 1.0, "details": []}',
    '{"action": "restart", "reason": "R", "time": 1.0, "id": null}',
    '{"action": "restart", "reason": "R", "time": 1.0, "monotonic": "soon"}',
    '{"reason": "R", "time": 1.0}',
    "[" * 100_000 + "]" * 100_000,
    '{"a": ' * 50_000 + "1" + "}" * 50_000,
    "\x00\x01\x02 binary",
]


def test_lines_that_are_not_entries_are_skipped_counted_and_described(tmp_path: Path) -> None:
    text = GOOD.to_json() + "\n" + "\n".join(BAD_LINES) + "\n" + GOOD.to_json() + "\n"
    (tmp_path / "ledger.jsonl").write_text(text, "utf-8")
    ledger = Ledger(tmp_path, clock=FakeClock(), boot_id="boot-a")
    ledger.load()
    assert [e.reason for e in ledger.entries] == ["Good", "Good"]
    assert ledger.skipped_lines == len(BAD_LINES)
    status = ledger.status()
    assert status["skipped_lines"] == len(BAD_LINES)
    assert status["skipped_examples"][:5] == [
        "line 2: not an object but null",
        "line 3: not an object but a number",
        "line 4: not an object but a string",
        "line 5: not an object but a list",
        "line 6: time is a string, not float",
    ]
    json.dumps(status)  # shown in /status as it is


def test_unknown_fields_from_a_newer_version_are_kept_out_not_refused(tmp_path: Path) -> None:
    record = json.loads(GOOD.to_json())
    record["phase"] = "exited"  # a field a later version adds
    (tmp_path / "ledger.jsonl").write_text(json.dumps(record) + "\n", "utf-8")
    ledger = Ledger(tmp_path, clock=FakeClock(), boot_id="boot-a")
    ledger.load()
    assert [e.reason for e in ledger.entries] == ["Good"]
    assert ledger.skipped_lines == 0


@pytest.mark.parametrize(
    "content",
    ["null", "[]", '{"files": []}', '{"files": {"/a": {"dev": true, "ino": 1, "offset": 0}}}',
     '{"files": {"/a": {"dev": 1, "ino": 1, "offset": -5}}}', "[" * 100_000],
)  # fmt: skip
def test_corrupt_cursor_files_are_reported_not_raised(tmp_path: Path, content: str) -> None:
    (tmp_path / "cursors.json").write_text(content, "utf-8")
    store = CursorStore(tmp_path)
    assert store.load() is None
    assert store.load_error is not None and store.load_error.startswith("not cursors")


def written_at(tmp_path: Path, clock: FakeClock, boot_id: str = "boot-a") -> None:
    ledger = Ledger(tmp_path, clock=clock, boot_id=boot_id)
    ledger.load()
    ledger.append(LedgerEntry("restart", "R", time=clock.wall()))
    ledger.close()


def reopened(tmp_path: Path, clock: FakeClock, boot_id: str = "boot-a") -> Ledger:
    ledger = Ledger(tmp_path, clock=clock, boot_id=boot_id)
    ledger.load()
    return ledger


def test_a_wall_clock_stepped_back_does_not_put_an_entry_in_the_future(tmp_path: Path) -> None:
    clock = FakeClock(now=5000.0)
    written_at(tmp_path, clock)
    clock.advance(30.0)
    clock.epoch -= 600.0  # NTP steps the wall clock back ten minutes
    ledger = reopened(tmp_path, clock)
    (restart,) = ledger.entries
    assert ledger.age(restart) == 30.0  # the monotonic clock saw 30 s, and so does the ledger
    assert clock.wall() - restart.time == pytest.approx(30.0)  # time is said on today's clock
    assert ledger.within("restart", 60.0) == [restart]
    assert ledger.within("restart", 20.0) == []


def test_a_wall_clock_stepped_forward_does_not_age_an_entry(tmp_path: Path) -> None:
    clock = FakeClock(now=5000.0)
    written_at(tmp_path, clock)
    clock.advance(30.0)
    clock.epoch += 7200.0
    ledger = reopened(tmp_path, clock)
    assert ledger.within("restart", 3600.0) == ledger.entries  # still in the budget window
    clock.epoch -= 9000.0  # and back again, while running
    assert ledger.age(ledger.entries[0]) == 30.0


def test_an_entry_from_the_future_of_another_boot_counts_as_just_now(tmp_path: Path) -> None:
    clock = FakeClock(now=5000.0)
    written_at(tmp_path, clock, boot_id="an-earlier-boot")
    clock.epoch -= 599.0  # the new boot's wall clock is ten minutes behind the old one
    ledger = reopened(tmp_path, clock)
    (restart,) = ledger.entries
    assert ledger.age(restart) == 0.0
    assert restart.time == clock.wall()
    clock.advance(10.0)
    assert ledger.age(restart) == 10.0
    assert ledger.within("restart", 3600.0) == [restart]


def test_entries_from_another_boot_are_placed_by_their_wall_clock_age(tmp_path: Path) -> None:
    clock = FakeClock(now=5000.0)
    written_at(tmp_path, clock, boot_id="an-earlier-boot")
    later = FakeClock(now=20.0, epoch=clock.wall() + 100.0 - 20.0)  # rebooted, 100 s later
    ledger = reopened(tmp_path, later)
    assert ledger.age(ledger.entries[0]) == pytest.approx(100.0)
