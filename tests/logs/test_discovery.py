"""Files and directories that appear after start, and the cap on followed files."""

import os
from pathlib import Path
from typing import Any

from tests.logs.helpers import Writer, append, create, running
from watcher.logs.monitor import Timing

SLOT_FREES_FAST = Timing(poll_interval=0.5, fallback_poll_interval=0.1, rotate_wait=0.2)


async def test_file_created_after_start_is_read_from_its_beginning(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "old.log").write_bytes(b"FATAL-1 before start\n")
    async with running([logs / "*.log"]) as run:
        (logs / "new.log").write_bytes(b"step 1\nFATAL-2 at birth\n")
        finding = await run.next()
        assert finding.file == str(logs / "new.log")
        assert (finding.offset, finding.evidence) == (7, ("FATAL-2 at birth",))
        create(logs / "moved-in.log", b"FATAL-3 renamed in\n", aside=tmp_path)
        finding = await run.next()
        assert (finding.file, finding.offset) == (str(logs / "moved-in.log"), 0)
        (logs / "other.txt").write_bytes(b"FATAL-4 not matched\n")
        await run.quiet(0.3)


async def test_directory_created_after_start_is_followed(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    async with running([logs / "*" / "rank*.log"]) as run:
        job = logs / "job1"
        job.mkdir()
        (job / "rank0.log").write_bytes(b"FATAL-5 in a new directory\n")
        finding = await run.next()
        assert (finding.file, finding.offset) == (str(job / "rank0.log"), 0)
        append(job / "rank0.log", b"FATAL-6 appended\n")
        assert (await run.next()).evidence == ("FATAL-6 appended",)
        (job / "notes.log").write_bytes(b"FATAL-7 not a rank file\n")
        await run.quiet(0.3)


async def test_directory_with_the_file_already_in_it_is_followed(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    async with running([logs / "*" / "rank*.log"]) as run:
        staged = tmp_path / "job2"
        staged.mkdir()
        (staged / "rank1.log").write_bytes(b"FATAL-8 moved in with its directory\n")
        staged.rename(logs / "job2")
        finding = await run.next()
        assert (finding.file, finding.offset) == (str(logs / "job2" / "rank1.log"), 0)


async def test_missing_fixed_directory_created_later(tmp_path: Path) -> None:
    async with running([tmp_path / "not-yet" / "*.log"]) as run:
        (tmp_path / "not-yet").mkdir()
        (tmp_path / "not-yet" / "a.log").write_bytes(b"FATAL-9 once the directory exists\n")
        finding = await run.next()
        assert (finding.file, finding.offset) == (str(tmp_path / "not-yet" / "a.log"), 0)


async def test_missing_nested_directories_created_with_parents(tmp_path: Path) -> None:
    deep = tmp_path / "run" / "job" / "logs"
    async with running([deep / "*.log"]) as run:
        os.makedirs(deep)
        with Writer(deep / "rank0.log") as writer:
            writer.write(b"FATAL-10 after mkdir -p\n")
            finding = await run.next()
            assert (finding.file, finding.offset) == (str(deep / "rank0.log"), 0)
            writer.write(b"FATAL-11 appended\n")
            assert (await run.next()).evidence == ("FATAL-11 appended",)


def not_followed(status: dict[str, Any]) -> list[str]:
    return [entry["path"] for entry in status["not_followed"]["paths"]]


async def test_only_max_files_are_followed(tmp_path: Path) -> None:
    paths = [tmp_path / f"rank{i:02}.log" for i in range(20)]
    for path in paths:
        path.write_bytes(b"started\n")
    async with running([tmp_path / "*.log"], max_files=5) as run:
        assert sorted(t.path for t in run.files.tails()) == [str(p) for p in paths[:5]]
        status = run.monitor.status()
        assert not_followed(status) == [str(p) for p in paths[5:]]
        assert len(status["files"]) == 5
        for path in paths:
            append(path, f"{path.name} FATAL-13\n".encode())
        findings = await run.take(5)
        assert sorted(f.file or "" for f in findings) == [str(p) for p in paths[:5]]
        await run.quiet(0.5)
        assert not_followed(run.monitor.status()) == [str(p) for p in paths[5:]]


async def test_a_refused_file_admitted_later_leaves_not_followed(tmp_path: Path) -> None:
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    first.write_bytes(b"started\n")
    second.write_bytes(b"started\n")
    async with running([tmp_path / "*.log"], max_files=1, timing=SLOT_FREES_FAST) as run:
        assert not_followed(run.monitor.status()) == [str(second)]
        first.unlink()  # its inode, still drained, no longer counts against max_files
        await run.until(lambda: str(second) in run.files.by_path, "the refused file admitted")
        append(second, b"FATAL-14 now followed\n")
        assert (await run.next()).evidence == ("FATAL-14 now followed",)
        assert not_followed(run.monitor.status()) == []


async def test_a_refused_file_admitted_later_does_not_replay_old_lines(tmp_path: Path) -> None:
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    first.write_bytes(b"started\n")
    second.write_bytes(b"FATAL-15 long before start\n")
    async with running([tmp_path / "*.log"], max_files=1, timing=SLOT_FREES_FAST) as run:
        first.unlink()
        await run.until(lambda: str(second) in run.files.by_path, "the refused file admitted")
        append(second, b"FATAL-16 now followed\n")
        assert (await run.next()).evidence == ("FATAL-16 now followed",)


async def test_log_directory_deleted_and_recreated_is_watched_again(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    async with running([logs / "*.log"]) as run:
        logs.rmdir()
        logs.mkdir()
        (logs / "b.log").write_bytes(b"FATAL-17 in the recreated directory\n")
        assert (await run.next(within=2.0)).file == str(logs / "b.log")
        (logs / "c.log").write_bytes(b"FATAL-18 later\n")
        assert (await run.next(within=2.0)).file == str(logs / "c.log")
