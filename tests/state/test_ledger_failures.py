"""The ledger and the cursors when the disk, the descriptor table or the directory fail.

A restart that cannot be recorded must not be taken, so `Ledger.append` either puts the
whole entry on disk or raises OSError and keeps nothing of it. Real failures throughout:
a 64 KiB tmpfs filled to the last byte, a descriptor table filled to the limit, a
deleted directory, a file whose reads fail with EIO.
"""

import errno
import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import FakeClock
from tests.state.volumes import descriptors_exhausted, fill, free, make_eio, small_volume
from watcher.state import ledger_file
from watcher.state.cursors import Cursor, CursorSnapshot, CursorStore
from watcher.state.ledger import Ledger, LedgerEntry


def entry(reason: str = "NcclWatchdogTimeout", evidence: str = "x" * 600) -> LedgerEntry:
    return LedgerEntry("restart", reason, time=1_800_001_000.0, evidence=(evidence,))


def lines_on_disk(path: Path) -> list[dict[str, object]]:
    """Every line of the file parsed: fails on a torn or glued line."""
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def fresh(state: Path) -> Ledger:
    ledger = Ledger(state, clock=FakeClock(), boot_id="boot-a")
    ledger.load()
    return ledger


def test_a_short_write_is_written_to_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Injected at the OS boundary: os.write takes at most 7 bytes per call, as a write
    interrupted by a signal or meeting a nearly full disk does."""
    ledger = fresh(tmp_path)
    real_write = os.write
    calls = []

    def short_write(fd: int, data: bytes) -> int:
        calls.append(len(data))
        return real_write(fd, bytes(data[:7]))

    monkeypatch.setattr(os, "write", short_write)
    ledger.append(entry())
    ledger.append(entry("Second"))
    CursorStore(tmp_path).save(CursorSnapshot({"/logs/a.log": Cursor(1, 2, 3)}, None))
    monkeypatch.undo()
    assert len(calls) > 100
    assert [e["reason"] for e in lines_on_disk(ledger.path)] == ["NcclWatchdogTimeout", "Second"]
    loaded = CursorStore(tmp_path).load()
    assert loaded is not None and loaded.files == {"/logs/a.log": Cursor(1, 2, 3)}


def test_a_torn_last_line_never_glues_onto_the_next_entry(tmp_path: Path) -> None:
    first = entry("First").to_json() + "\n"
    (tmp_path / "ledger.jsonl").write_text(first + '{"action":"restart","reas')  # killed mid-write
    ledger = fresh(tmp_path)
    assert ledger.skipped_lines == 1
    ledger.append(entry("Second"))
    again = fresh(tmp_path)
    assert [e.reason for e in again.entries] == ["First", "Second"]
    assert again.skipped_lines == 1


def test_a_full_volume_records_on_the_reserve_then_refuses_without_a_torn_line(
    tmp_path: Path,
) -> None:
    with small_volume(tmp_path / "state") as state:
        ledger = fresh(state)
        assert ledger.status()["reserve"] == "ready"
        ledger.append(entry("BeforeFull"))
        fill(state)
        outcomes = []
        for number in range(60):  # the last page fills, then the reserve, then refusals
            try:
                ledger.append(entry(f"Later{number}"))
                outcomes.append("ok")
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                outcomes.append("refused")
            if outcomes[-1] == "ok" and ledger.status()["reserve"].startswith("used"):
                outcomes[-1] = "on the reserve"
        first_refused = outcomes.index("refused")
        assert "on the reserve" in outcomes[:first_refused]  # recorded before any refusal
        assert outcomes[first_refused:] == ["refused"] * (len(outcomes) - first_refused)
        on_disk = [e["reason"] for e in lines_on_disk(ledger.path)]
        assert on_disk[0] == "BeforeFull"
        assert on_disk == [e.reason for e in ledger.entries]  # refused means not kept
        assert ledger.status()["append_failures"] == outcomes.count("refused")
        reloaded = fresh(state)
        assert reloaded.skipped_lines == 0
        assert reloaded.status()["reserve"].startswith("unavailable")


def test_a_cursor_save_on_a_full_volume_keeps_the_last_good_file(tmp_path: Path) -> None:
    with small_volume(tmp_path / "state") as state:
        store = CursorStore(state)
        good = CursorSnapshot({"/logs/a.log": Cursor(1, 2, 300, b"head")}, "restart-1")
        store.save(good)
        fill(state)
        free(state, 8192)  # room for a piece of the new file: the write is cut short
        many = {f"/logs/{n:04d}-{'p' * 200}.log": Cursor(1, n, n) for n in range(500)}
        with pytest.raises(OSError) as raised:
            store.save(CursorSnapshot(many, "restart-1"))
        assert raised.value.errno == errno.ENOSPC
        assert CursorStore(state).load() == good
        assert not (state / "cursors.json.tmp").exists()
        assert store.status()["save_failures"] == 1


def test_exhausted_descriptors_still_record_on_the_kept_descriptor(tmp_path: Path) -> None:
    ledger = fresh(tmp_path)  # opens the ledger at start, as the watcher does
    store = CursorStore(tmp_path)
    good = CursorSnapshot({"/logs/a.log": Cursor(1, 2, 3)}, None)
    store.save(good)
    with descriptors_exhausted():
        ledger.append(entry("UnderEmfile"))
        with pytest.raises(OSError) as raised:
            store.save(CursorSnapshot({"/logs/a.log": Cursor(1, 2, 99)}, None))
        assert raised.value.errno == errno.EMFILE
    assert [e["reason"] for e in lines_on_disk(ledger.path)] == ["UnderEmfile"]
    assert CursorStore(tmp_path).load() == good


def test_a_ledger_that_cannot_open_raises_and_keeps_nothing(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path, clock=FakeClock(), boot_id="boot-a")  # never loaded: no descriptor
    with descriptors_exhausted(), pytest.raises(OSError) as raised:
        ledger.append(entry())
    assert raised.value.errno == errno.EMFILE
    assert ledger.entries == []
    assert ledger.status()["append_failures"] == 1


def test_a_deleted_state_dir_is_written_back_from_memory(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    ledger = fresh(state)
    ledger.append(entry("One"))
    ledger.append(entry("Two"))
    shutil.rmtree(state)
    ledger.append(entry("Three"))
    assert [e["reason"] for e in lines_on_disk(state / "ledger.jsonl")] == ["One", "Two", "Three"]
    assert ledger.status()["restored_from_memory"] == 1


def test_a_state_dir_that_cannot_come_back_refuses(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    ledger = fresh(state)
    ledger.append(entry("One"))
    shutil.rmtree(state)
    state.write_text("a file where the directory was")
    with pytest.raises(OSError):
        ledger.append(entry("Two"))
    assert [e.reason for e in ledger.entries] == ["One"]


def test_a_ledger_whose_reads_fail_with_eio_loads_reports_and_refuses(tmp_path: Path) -> None:
    make_eio(tmp_path / "ledger.jsonl")
    ledger = Ledger(tmp_path, clock=FakeClock(), boot_id="boot-a")
    ledger.load()  # does not raise: the watcher starts and reports
    assert ledger.read_error == "Input/output error"
    assert ledger.status()["read_error"] == "Input/output error"
    with pytest.raises(OSError) as raised:
        ledger.append(entry())
    assert "budget is unknown" in str(raised.value)
    assert ledger.entries == []


def test_cursors_whose_reads_fail_with_eio_are_reported_not_raised(tmp_path: Path) -> None:
    make_eio(tmp_path / "cursors.json")
    store = CursorStore(tmp_path)
    assert store.load() is None
    assert store.load_error == "cannot read it: Input/output error"


def test_the_reserve_is_small_next_to_the_volume() -> None:
    assert ledger_file.RESERVE_BYTES <= 16 << 10


def test_an_entry_that_cannot_be_serialised_raises_oserror(tmp_path: Path) -> None:
    ledger = fresh(tmp_path)
    with pytest.raises(OSError) as raised:
        ledger.append(LedgerEntry("restart", "R", time=float("nan")))
    assert raised.value.errno == errno.EINVAL
    assert ledger.entries == []
