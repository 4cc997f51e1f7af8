"""Appends to a followed file: what fires, where, and what stays quiet."""

import random
import re
from pathlib import Path

from tests.logs.helpers import Writer, append, running
from watcher.types import Severity


async def test_appended_fatal_line_fires_with_file_offset_and_evidence(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_bytes(b"step 1\nold FATAL-1 before start\nstep 2\n")
    async with running([tmp_path / "*.log"]) as run:
        await run.quiet(0.3)
        offset = append(log, b"step 3\nrank 0: FATAL-42 boom\nstep 4\n")
        finding = await run.next()
        assert finding.reason == "Fatal"
        assert finding.source == "log"
        assert finding.severity is Severity.FATAL
        assert finding.file == str(log)
        assert finding.offset == offset + len(b"step 3\n")
        assert finding.evidence == ("rank 0: FATAL-42 boom",)
        assert finding.occurrences == 1
        await run.quiet(0.3)
        assert run.monitor.lines_scanned == 3


async def test_several_matches_in_one_read_are_one_finding_with_a_count(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.touch()
    async with running([tmp_path / "*.log"]) as run:
        append(log, b"FATAL-1 first\nok\nFATAL-2 second\n")
        finding = await run.next()
        assert finding.offset == 0
        assert finding.evidence == ("FATAL-1 first",)
        assert finding.occurrences == 2
        await run.quiet(0.3)


async def test_line_written_in_pieces_fires_once_after_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_bytes(b"earlier\n")
    async with running([tmp_path / "*.log"]) as run:
        with Writer(log) as writer:
            written = 0
            for piece in (b"rank 3: FA", b"TAL", b"-7", b"7 in pieces"):
                writer.write(piece)
                written += len(piece)
                await run.carrying(log, written)
                assert run.findings.empty()
            await run.quiet(0.2)
            writer.write(b"\n")
            finding = await run.next()
        assert finding.offset == len(b"earlier\n")
        assert finding.evidence == ("rank 3: FATAL-77 in pieces",)
        await run.quiet(0.3)


GARBAGE_LINE = b"\x00\x01bin\xff\xfe \x1b[31mFATAL-51\x1b[0m \xc3\x28 ok\r\n"


async def test_binary_garbage_around_a_fatal_line_fires_with_text_evidence(
    tmp_path: Path,
) -> None:
    log = tmp_path / "train.log"
    log.touch()
    noise = random.Random(7).randbytes(64 * 1024) + b"\n"
    same_line = random.Random(8).randbytes(200).replace(b"\n", b"\x00")
    assert b"FATAL-" not in noise + same_line
    async with running([tmp_path / "*.log"]) as run:
        offset = append(log, noise + same_line + GARBAGE_LINE + noise)
        finding = await run.next()
        assert finding.offset == offset + len(noise)
        (evidence,) = finding.evidence
        assert evidence.endswith("\\x1b[31mFATAL-51\\x1b[0m \ufffd( ok")
        assert evidence.encode("utf-8")  # valid text: no lone surrogates
        assert not any(c != "\t" and (ord(c) < 0x20 or ord(c) == 0x7F) for c in evidence)
        await run.quiet(0.3)


async def test_fatal_line_in_garbage_fires_and_pure_garbage_does_not(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.touch()
    async with running([tmp_path / "*.log"]) as run:
        append(log, GARBAGE_LINE)
        finding = await run.next()
        assert finding.offset == 0
        assert finding.evidence == (
            "\\x00\\x01bin\ufffd\ufffd \\x1b[31mFATAL-51\\x1b[0m \ufffd( ok",
        )
        append(log, b"progress 10%\rprogress 20%\rFATAL-52\r\n")
        assert (await run.next()).evidence == ("progress 10%\\x0dprogress 20%\\x0dFATAL-52",)
        garbage = random.Random(11).randbytes(256 * 1024) + b"\xffFATAL-\xff\x1b[0m\n"
        assert re.search(rb"FATAL-[0-9]", garbage) is None
        lines_before = run.monitor.lines_scanned
        append(log, garbage)
        await run.until(
            lambda: run.monitor.lines_scanned == lines_before + garbage.count(b"\n"),
            "the garbage scanned",
        )
        await run.quiet(0.3)
