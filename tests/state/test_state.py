"""Ledger, cursors and the start plan they lead to."""

from pathlib import Path

from tests.conftest import FakeClock
from watcher.state import ledger as ledger_module
from watcher.state.cursors import Cursor, CursorSnapshot, CursorStore
from watcher.state.ledger import Ledger, LedgerEntry
from watcher.state.startup import plan_start


def test_ledger_round_trip_and_durable_append(tmp_path: Path) -> None:
    clock = FakeClock(now=1000.0, epoch=1_800_000_000.5 - 1000.0)
    ledger = Ledger(tmp_path, clock=clock, boot_id="boot-a")
    entry = LedgerEntry(
        action="restart", reason="NcclWatchdogTimeout", time=1_800_000_000.5,
        evidence=("line one",), file="/logs/a.log", offset=42, exit_code=88,
        details={"restarts_in_window": 0},
    )  # fmt: skip
    ledger.append(entry)
    stamped = ledger.entries[0]
    assert (stamped.id, stamped.boot_id, stamped.monotonic) == (entry.id, "boot-a", 1000.0)
    again = Ledger(tmp_path, clock=clock, boot_id="boot-a")
    again.load()
    assert again.entries == [stamped]
    assert '"time_iso":"2027-01-15T08:00:00Z"' in (tmp_path / "ledger.jsonl").read_text()


def test_ledger_skips_torn_and_foreign_lines(tmp_path: Path) -> None:
    good = LedgerEntry(action="restart", reason="A", time=1.0)
    (tmp_path / "ledger.jsonl").write_text(
        good.to_json() + "\n" + '{"action": "restart", "rea' + "\n\n" + "[1, 2]\n"
    )
    ledger = Ledger(tmp_path)
    ledger.load()
    assert ledger.entries == [good]
    assert ledger.skipped_lines == 2


def test_ledger_compacts_when_too_long(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    count = ledger_module.KEEP + 10
    path.write_text(
        "".join(LedgerEntry("restart", "R", float(i)).to_json() + "\n" for i in range(count))
    )
    ledger = Ledger(tmp_path)
    ledger.load()
    assert len(ledger.entries) == ledger_module.KEEP
    assert ledger.entries[0].time == 10.0
    assert len(path.read_text().splitlines()) == ledger_module.KEEP


def test_ledger_queries(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    assert ledger.last("restart") is None
    for action in ("restart", "hold", "restart"):
        ledger.append(LedgerEntry(action, "R", 1.0))
    assert len(ledger.actions("restart")) == 2
    assert ledger.last("restart") is ledger.entries[2]


def test_cursors_round_trip_and_skip_unchanged_writes(tmp_path: Path) -> None:
    store = CursorStore(tmp_path)
    assert store.load() is None
    snapshot = CursorSnapshot({"/logs/a.log": Cursor(1, 2, 300, b"\x00step 1\n")}, "abc")
    assert store.save(snapshot) is True
    assert store.save(snapshot) is False
    assert CursorStore(tmp_path).load() == snapshot
    assert not (tmp_path / "cursors.json.tmp").exists()


def test_cursors_from_before_the_head_field_still_load(tmp_path: Path) -> None:
    (tmp_path / "cursors.json").write_text(
        '{"acknowledged_restart": null, "files": {"/a": {"dev": 1, "ino": 2, "offset": 3}}}'
    )
    loaded = CursorStore(tmp_path).load()
    assert loaded is not None and loaded.files == {"/a": Cursor(1, 2, 3, b"")}


def test_corrupt_cursors_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "cursors.json").write_text('{"files": {"/a": {"dev": 1}}}')
    assert CursorStore(tmp_path).load() is None


def test_start_plan_modes(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    fresh = plan_start(ledger, None, "end")
    assert (fresh.mode, fresh.open_policy.from_end) == ("fresh", True)
    assert plan_start(ledger, None, "start").open_policy.from_end is False

    cursors = CursorSnapshot({"/a": Cursor(1, 2, 3)}, None)
    resume = plan_start(ledger, cursors, "start")
    assert resume.mode == "resume"
    assert resume.open_policy.from_end is False  # a file with no cursor is new: read it whole
    assert resume.open_policy.resume == {"/a": Cursor(1, 2, 3)}

    ledger.append(LedgerEntry("restart", "R", 1.0))
    after = plan_start(ledger, cursors, "start")
    assert after.mode == "after_restart"
    assert after.open_policy.from_end is True
    assert after.open_policy.resume == {}
    assert after.acknowledged_restart == ledger.entries[0].id

    acknowledged = CursorSnapshot({"/a": Cursor(1, 2, 3)}, ledger.entries[0].id)
    assert plan_start(ledger, acknowledged, "end").mode == "resume"
