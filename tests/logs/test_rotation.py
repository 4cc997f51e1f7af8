"""Rotation by rename, copytruncate and delete-and-recreate, seen through real inotify.

A writer keeps its descriptor open across the rotation, as a training process does, so
lines can still land in the old inode after it lost its name.
"""

import os
import shutil
import time
from pathlib import Path

import pytest

from tests.logs.helpers import RULES, Writer, append, record, running
from watcher.logs.monitor import Timing
from watcher.rules.packs import load_pack

QUICK_EXPIRY = Timing(poll_interval=1.0, fallback_poll_interval=0.1, rotate_wait=0.2)


async def test_rename_rotation_new_file_fires(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    with Writer(log) as old:
        old.write(b"FATAL-0 before start\n")
        async with running([tmp_path / "*.log"]) as run:
            old.write(b"FATAL-1 old\n")
            assert (await run.next()).evidence == ("FATAL-1 old",)
            log.rename(tmp_path / "train.log.1")
            with Writer(log) as new:
                new.write(b"step 1\nnew file FATAL-2\n")
                finding = await run.next()
            assert (finding.file, finding.offset) == (str(log), 7)
            assert finding.evidence == ("new file FATAL-2",)
            await run.quiet(0.3)


async def test_rename_rotation_drains_the_old_inode(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    log = tmp_path / "train.log"
    with Writer(log) as old:
        old.write(b"step 0\n")
        async with running([tmp_path / "*.log"]) as run:
            log.rename(tmp_path / "train.log.1")
            Writer(log).close()
            started = time.monotonic()
            old.write(b"late FATAL-3 on the old inode\n")
            finding = await run.next()
            record(request, time.monotonic() - started)
            assert finding.evidence == ("late FATAL-3 on the old inode",)
            assert finding.offset == 7
            await run.until(lambda: any(run.files.orphans()), "the rename noticed")
            old.write(b"later FATAL-4 on the old inode\n")
            assert (await run.next()).evidence == ("later FATAL-4 on the old inode",)
            with Writer(log) as new:
                new.write(b"new FATAL-5\n")
                assert (await run.next()).evidence == ("new FATAL-5",)
            await run.quiet(0.3)


async def test_rename_out_of_the_directory_drains_the_old_inode(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    logs, archive = tmp_path / "logs", tmp_path / "archive"
    logs.mkdir()
    archive.mkdir()
    log, other = logs / "train.log", logs / "other.log"
    other.touch()
    with Writer(log) as old:
        old.write(b"step 0\n")
        async with running([logs / "*.log"]) as run:
            log.rename(archive / "train.log.1")
            Writer(log).close()
            started = time.monotonic()
            old.write(b"late FATAL-5 after moving out\n")
            finding = await run.next()
            # watchdog would hold the unpaired IN_MOVED_FROM (and every event behind it)
            # for 0.5 s; watch.default_observer cuts that to 20 ms.
            elapsed = time.monotonic() - started
            record(request, elapsed)
            assert elapsed < 0.25
            assert finding.evidence == ("late FATAL-5 after moving out",)
            assert finding.offset == 7
            (archive / "train.log.1").rename(archive / "train.log.2")
            log.rename(archive / "train.log.1")
            started = time.monotonic()
            append(other, b"FATAL-6 in another file\n")
            assert (await run.next()).evidence == ("FATAL-6 in another file",)
            elapsed = time.monotonic() - started
            record(request, elapsed, "other_file_detect_s")
            assert elapsed < 0.25
            await run.quiet(0.3)


async def test_moved_out_orphan_is_drained_at_the_fallback_interval(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    logs, archive = tmp_path / "logs", tmp_path / "archive"
    logs.mkdir()
    archive.mkdir()
    log = logs / "train.log"
    timing = Timing(poll_interval=5.0, fallback_poll_interval=0.1, rotate_wait=10.0)
    with Writer(log) as old:
        async with running([logs / "*.log"], timing=timing) as run:
            log.rename(archive / "train.log.1")
            Writer(log).close()
            await run.until(lambda: any(run.files.orphans()), "the old file orphaned")
            await run.until(lambda: str(log) in run.files.by_path, "the new file followed")
            started = time.monotonic()
            old.write(b"later still FATAL-6\n")
            await run.next(within=8.0)
            elapsed = time.monotonic() - started
            record(request, elapsed)
            assert elapsed < 1.0, f"took {elapsed:.2f}s"


async def test_rename_to_a_matching_name_is_not_read_again(tmp_path: Path) -> None:
    # Holds whichever name the monitor reconciles first; the test below covers the case
    # where the new name is seen before the old one goes.
    log = tmp_path / "train.log"
    timing = Timing(poll_interval=0.5, fallback_poll_interval=0.1, rotate_wait=2.0)
    with Writer(log) as old:
        async with running([tmp_path / "*.log*"], timing=timing) as run:
            old.write(b"FATAL-7 before rotation\n")
            assert (await run.next()).evidence == ("FATAL-7 before rotation",)
            log.rename(tmp_path / "train.log.1")
            old.write(b"FATAL-8 late\n")
            assert (await run.next()).evidence == ("FATAL-8 late",)
            with Writer(log) as new:
                new.write(b"FATAL-9 new\n")
                assert (await run.next()).evidence == ("FATAL-9 new",)
                await run.until(lambda: not any(run.files.orphans()), "the rename noticed")
                await run.quiet(2.5)  # past rotate_wait and several ticks
            paths = sorted(tail.path for tail in run.files.tails())
            assert paths == [str(log), str(tmp_path / "train.log.1")]


async def test_new_matching_name_seen_before_the_old_name_goes_is_not_read_again(
    tmp_path: Path,
) -> None:
    # What a rename looks like when the monitor reconciles the new name first: about
    # half of all renames, depending on set iteration order in LogMonitor._apply.
    log, rotated = tmp_path / "train.log", tmp_path / "train.log.1"
    with Writer(log) as old:
        async with running([tmp_path / "*.log*"], timing=QUICK_EXPIRY) as run:
            os.link(log, rotated)
            old.write(b"FATAL-10 once\n")
            assert (await run.next()).evidence == ("FATAL-10 once",)
            log.unlink()
            with Writer(log) as new:
                loop_deadline = time.monotonic() + 2.5
                while time.monotonic() < loop_deadline:
                    new.write(b"step\n")  # a busy writer keeps waking the monitor
                    await run.quiet(0.05)


async def test_copytruncate_then_append_fires(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    with Writer(log) as writer:
        async with running([tmp_path / "*.log"]) as run:
            writer.write(b"FATAL-11 before copy\n" + b"step\n" * 50)
            assert (await run.next()).evidence == ("FATAL-11 before copy",)
            await run.read_to_end(log)
            shutil.copyfile(log, tmp_path / "train.log.1")
            os.truncate(log, 0)
            await run.until(lambda: run.tail(log).truncations == 1, "the truncation noticed")
            writer.write(b"FATAL-12 after truncate\n")
            finding = await run.next()
            assert (finding.offset, finding.evidence) == (0, ("FATAL-12 after truncate",))
            await run.quiet(0.3)


async def test_truncate_and_rewrite_past_the_old_offset_fires(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    with Writer(log) as writer:
        writer.write(b"old run step 1\n" * 10)
        async with running([tmp_path / "*.log"]) as run:
            old_size = log.stat().st_size
            # Truncate and rewrite longer with no await in between: the monitor cannot
            # read in the middle, it only sees a file that grew past its offset.
            os.truncate(log, 0)
            new = b"restarted job, different text\n" * 8 + b"new run FATAL-13\n"
            assert len(new) - len(b"new run FATAL-13\n") > old_size
            writer.write(new)
            finding = await run.next()
            assert finding.evidence == ("new run FATAL-13",)
            assert finding.offset == len(new) - len(b"new run FATAL-13\n")
            assert run.tail(log).truncations == 1
            await run.quiet(0.3)


async def test_delete_and_recreate_fires_once(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    with Writer(log) as old:
        async with running([tmp_path / "*.log"], timing=QUICK_EXPIRY) as run:
            old.write(b"FATAL-14 old\n")
            assert (await run.next()).evidence == ("FATAL-14 old",)
            log.unlink()
            with Writer(log) as new:
                new.write(b"FATAL-15 new\n")
                finding = await run.next()
            assert (finding.file, finding.offset) == (str(log), 0)
            assert finding.evidence == ("FATAL-15 new",)
            await run.until(lambda: len(run.files) == 1, "the deleted file forgotten")
            await run.quiet(1.5)


async def test_unfinished_last_line_of_a_deleted_file_is_scanned_on_expiry(
    tmp_path: Path,
) -> None:
    log = tmp_path / "train.log"
    with Writer(log) as old:
        async with running([tmp_path / "*.log"], timing=QUICK_EXPIRY) as run:
            old.write(b"step\nlast words FATAL-16")
            await run.carrying(log, len(b"last words FATAL-16"))
            log.unlink()
            finding = await run.next()
            assert (finding.offset, finding.evidence) == (5, ("last words FATAL-16",))
            assert len(run.files) == 0
            await run.quiet(0.3)


async def test_copytruncate_forgets_an_open_traceback(tmp_path: Path) -> None:
    """A top-level traceback cut off by copytruncate must not claim the new file's first
    exception-shaped line: a retry message after the truncation is noise, not its end."""
    log = tmp_path / "train.log"
    rules = load_pack("python") + RULES
    with Writer(log) as writer:
        async with running([tmp_path / "*.log"], rules=rules) as run:
            writer.write(
                b"Traceback (most recent call last):\n"
                b'  File "/app/train.py", line 12, in <module>\n'
            )
            await run.read_to_end(log)
            os.truncate(log, 0)
            await run.until(lambda: run.tail(log).truncations == 1, "the truncation noticed")
            writer.write(b"Error: connection reset, retrying (1/5)\n")
            await run.read_to_end(log)
            await run.quiet(0.3)
