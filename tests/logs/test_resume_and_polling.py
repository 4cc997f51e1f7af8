"""Resuming from saved cursors, and the stat-based safety net when inotify says nothing."""

import logging
import os
from pathlib import Path

import pytest

from tests.logs.helpers import INOTIFY, DeafWatcher, Writer, append, running
from watcher.logs.monitor import Timing
from watcher.state.cursors import HEAD_BYTES, Cursor

DEAF = Timing(poll_interval=0.2, fallback_poll_interval=0.05, rotate_wait=1)


def cursor(path: Path, offset: int) -> Cursor:
    """What the monitor saves for ``path`` at ``offset``: its inode and first bytes."""
    st = path.stat()
    return Cursor(st.st_dev, st.st_ino, offset, path.read_bytes()[:HEAD_BYTES])


async def test_same_inode_resumes_at_the_cursor(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_bytes(b"FATAL-61 scanned by the previous run\nstep\n")
    saved = log.stat().st_size
    append(log, b"FATAL-62 written while the watcher was down\n")
    async with running([tmp_path / "*.log"], resume={str(log): cursor(log, saved)}) as run:
        finding = await run.next()
        assert (finding.offset, finding.evidence) == (
            saved,
            ("FATAL-62 written while the watcher was down",),
        )
        await run.quiet(0.3)
        assert run.tail(log).offset == log.stat().st_size


async def test_cursor_for_another_inode_starts_from_the_end(tmp_path: Path) -> None:
    log, other = tmp_path / "train.log", tmp_path / "other.txt"
    log.write_bytes(b"FATAL-63 from a previous job\n")
    other.write_bytes(b"x" * 100)
    async with running([tmp_path / "*.log"], resume={str(log): cursor(other, 0)}) as run:
        assert run.tail(log).offset == log.stat().st_size
        await run.quiet(0.3)
        offset = append(log, b"FATAL-64 new\n")
        finding = await run.next()
        assert (finding.offset, finding.evidence) == (offset, ("FATAL-64 new",))


async def test_a_new_file_with_the_old_inode_number_is_read_whole(tmp_path: Path) -> None:
    """Deleted and recreated while the watcher was away, the new file got the inode
    number back (common on ext4 and tmpfs): its first bytes tell it apart."""
    log = tmp_path / "train.log"
    log.write_bytes(b"FATAL-69 in the new file\nstep 1\nstep 2\n")
    st = log.stat()
    old = Cursor(st.st_dev, st.st_ino, len(b"FATAL-69 in the new file\n"), b"epoch 1 of the old\n")
    async with running([tmp_path / "*.log"], resume={str(log): old}, from_end=False) as run:
        finding = await run.next()
        assert (finding.offset, finding.evidence) == (0, ("FATAL-69 in the new file",))


async def test_cursor_past_the_end_of_the_same_inode_reads_it_whole(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_bytes(b"FATAL-65 after a truncation\n")
    async with running([tmp_path / "*.log"], resume={str(log): cursor(log, 10_000)}) as run:
        finding = await run.next()
        assert (finding.offset, finding.evidence) == (0, ("FATAL-65 after a truncation",))


async def test_cursors_taken_at_stop_let_the_next_run_miss_nothing(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.touch()
    with Writer(log) as writer:
        async with running([tmp_path / "*.log"]) as run:
            writer.write(b"FATAL-66 first run\nunfinished ")
            assert (await run.next()).evidence == ("FATAL-66 first run",)
            await run.carrying(log, len(b"unfinished "))
            saved = run.monitor.cursors()
        assert saved == {str(log): cursor(log, len(b"FATAL-66 first run\n"))}
        writer.write(b"line FATAL-67\nFATAL-68 while down\n")
        async with running([tmp_path / "*.log"], resume=saved) as run:
            finding = await run.next()
            assert finding.offset == len(b"FATAL-66 first run\n")
            assert finding.evidence == ("unfinished line FATAL-67",)
            assert finding.occurrences == 2
            await run.quiet(0.3)


async def test_polling_finds_appends_when_inotify_is_silent(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_bytes(b"FATAL-71 before start\n")
    async with running([tmp_path / "*.log"], timing=DEAF, watcher_factory=DeafWatcher) as run:
        assert run.monitor.healthy() == (True, "inotify")
        offset = append(log, b"FATAL-72 unseen by inotify\n")
        finding = await run.next(within=2.0)
        assert (finding.offset, finding.evidence) == (offset, ("FATAL-72 unseen by inotify",))
        assert not run.monitor.polling  # one silent tick is not enough
        append(log, b"FATAL-73 again\n")
        assert (await run.next(within=2.0)).evidence == ("FATAL-73 again",)
        await run.until(lambda: run.monitor.polling, "the switch to polling", within=2.0)
        assert run.monitor.healthy() == (True, "polling")
        assert run.monitor.status()["mode"] == "polling"
        append(log, b"FATAL-74 while polling\n")
        assert (await run.next(within=1.0)).evidence == ("FATAL-74 while polling",)


async def test_polling_follows_new_files_and_rotation_without_events(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    with Writer(log) as old:
        async with running(
            [tmp_path / "*" / "*.log", tmp_path / "*.log"],
            timing=DEAF,
            watcher_factory=DeafWatcher,
        ) as run:
            (tmp_path / "job").mkdir()
            (tmp_path / "job" / "rank0.log").write_bytes(b"FATAL-75 new dir\n")
            assert (await run.next(within=2.0)).evidence == ("FATAL-75 new dir",)
            os.rename(log, tmp_path / "train.log.1")
            old.write(b"FATAL-76 old inode\n")
            assert (await run.next(within=2.0)).evidence == ("FATAL-76 old inode",)
            with Writer(log) as new:
                new.write(b"FATAL-77 new inode\n")
                finding = await run.next(within=2.0)
            assert (finding.file, finding.offset) == (str(log), 0)
            await run.quiet(0.3)


async def test_a_file_rotated_while_the_watcher_was_down_is_read_to_its_end(
    tmp_path: Path,
) -> None:
    """The watcher alone restarted; meanwhile the workload wrote on and rotated its log.
    What it wrote to the old inode after the saved cursor is still read."""
    log, rotated = tmp_path / "train.log", tmp_path / "train.log.1"
    log.write_bytes(b"step 1\n")
    saved = {str(log): cursor(log, log.stat().st_size)}
    append(log, b"FATAL-81 just before the rotation\nFATAL-83 unfinished")
    log.rename(rotated)
    log.write_bytes(b"FATAL-82 in the new file\n")
    async with running([tmp_path / "*.log"], resume=saved, from_end=False) as run:
        found = {f.evidence: f for f in await run.take(2)}
        old = found[("FATAL-81 just before the rotation",)]
        assert (old.file, old.offset) == (str(rotated), len(b"step 1\n"))
        assert found[("FATAL-82 in the new file",)].offset == 0
        last = await run.next(within=INOTIFY.rotate_wait + 3)  # the unfinished line, at expiry
        assert (last.file, last.evidence) == (str(rotated), ("FATAL-83 unfinished",))
        assert [t.path for t in run.files.tails()] == [str(log)]


async def test_a_file_gone_while_the_watcher_was_down_is_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "train.log"
    log.write_bytes(b"step 1\n")
    saved = {str(log): cursor(log, log.stat().st_size)}
    fresh = tmp_path / "train.log.new"
    fresh.write_bytes(b"step 2\n")  # written before the old inode is freed: no reuse
    fresh.replace(log)
    with caplog.at_level(logging.WARNING, logger="watcher.logs.files"):
        async with running([tmp_path / "*.log"], resume=saved, from_end=False) as run:
            await run.quiet(0.2)
    (record,) = [r for r in caplog.records if "was replaced while" in r.getMessage()]
    assert record.fields == {"path": str(log), "unread_after": len(b"step 1\n")}  # type: ignore[attr-defined]
