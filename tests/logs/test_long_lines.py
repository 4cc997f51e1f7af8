"""Endless lines and write bursts: bounded memory, nothing missed, every line counted."""

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.logs.helpers import KIB, MIB, Writer, create, running
from watcher.logs.lines import Block, LineAssembler

MAX_LINE = 1 * MIB
CHUNK = 256 * KIB


@pytest.fixture
def biggest_carry(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Record the largest unfinished line any LineAssembler carries after a feed."""
    seen = [0]
    feed = LineAssembler.feed

    def recording(
        self: LineAssembler, chunk: bytes, offset: int, *, with_carry: bool = False
    ) -> Block | None:
        block = feed(self, chunk, offset, with_carry=with_carry)
        seen[0] = max(seen[0], self.pending)
        return block

    monkeypatch.setattr(LineAssembler, "feed", recording)
    yield seen


def cut_offsets(data: bytes) -> list[int]:
    """Where the monitor cuts ``data`` if it reads all of it from offset 0."""
    lines = LineAssembler(MAX_LINE)
    cuts = []
    for start in range(0, len(data), CHUNK):
        block = lines.feed(data[start : start + CHUNK], start)
        if block is not None and block.data[block.end - 1 : block.end] != b"\n":
            cuts.append(block.base + block.end)
    return cuts


async def test_endless_line_is_scanned_in_bounded_memory(
    tmp_path: Path, biggest_carry: list[int]
) -> None:
    log = tmp_path / "train.log"
    log.touch()
    middle = 4 * MIB + 1000
    async with running([log], max_line=MAX_LINE, chunk=CHUNK) as run:
        with Writer(log) as writer:
            line = bytearray(b"x" * (8 * MIB))
            line[middle : middle + 10] = b" FATAL-21 "
            for start in range(0, len(line), 512 * KIB):
                writer.write(bytes(line[start : start + 512 * KIB]))
            finding = await run.next()
            assert "FATAL-21" in finding.evidence[0]
            assert finding.offset == 0  # where the endless line starts, not the cut piece
            assert len(finding.evidence[0]) <= 1026  # 1024 kept, an ellipsis each side
            writer.write(b"\nafter the long line FATAL-22\n")
            finding = await run.next()
        assert finding.offset == 8 * MIB + 1
        assert finding.evidence == ("after the long line FATAL-22",)
        await run.quiet(0.3)
        tail = run.tail(log)
        assert tail.lines.cut_lines >= 7
        assert run.monitor.lines_scanned == 2
        assert run.monitor.bytes_scanned >= tail.offset
    assert 0 < biggest_carry[0] <= MAX_LINE + CHUNK


async def test_match_straddling_a_cut_fires_once(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    line = bytearray(b"y" * (3 * MIB))
    cut = cut_offsets(bytes(line))[0]
    line[cut - 3 : cut + 7] = b"FATAL-31 z"  # "FAT" ends one piece, "AL-31" starts the next
    async with running([logs / "*.log"], max_line=MAX_LINE, chunk=CHUNK) as run:
        create(logs / "long.log", bytes(line) + b"\n", aside=tmp_path)
        finding = await run.next()
        assert "FATAL-31" in finding.evidence[0]
        await run.quiet(0.3)
        assert run.tail(logs / "long.log").lines.cut_lines == len(cut_offsets(bytes(line)))


async def test_match_cut_between_its_digits_fires_once(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    line = bytearray(b"y" * (3 * MIB))
    cut = cut_offsets(bytes(line))[0]
    line[cut - 7 : cut + 2] = b"FATAL-42 "
    async with running([logs / "*.log"], max_line=MAX_LINE, chunk=CHUNK) as run:
        create(logs / "long.log", bytes(line) + b"\n", aside=tmp_path)
        assert "FATAL-42 " in (await run.next()).evidence[0]  # reported whole, once
        await run.quiet(0.5)


def burst(lines: int, fatal_at: int) -> bytes:
    """``lines`` log lines with one fatal line, the ``fatal_at``-th (counting from 0)."""
    return b"".join(
        b"rank 0 FATAL-%d exploded\n" % n if n == fatal_at else b"step %d loss 0.25\n" % n
        for n in range(lines)
    )


@pytest.mark.slow
@pytest.mark.parametrize("fatal_at", [999_999, 500_000], ids=["at-end", "in-middle"])
async def test_burst_of_a_million_lines(tmp_path: Path, fatal_at: int) -> None:
    log = tmp_path / "train.log"
    log.touch()
    total = 1_000_000
    data = burst(total, fatal_at)
    fatal_offset = data.rfind(b"\n", 0, data.find(b"FATAL")) + 1
    async with running([log]) as run:
        with Writer(log) as writer:
            for start in range(0, len(data), 3 * MIB):  # big writes that split lines
                writer.write(data[start : start + 3 * MIB])
                await asyncio.sleep(0)  # let the monitor read while the burst goes on
        finding = await run.next(within=30.0)
        assert finding.evidence == (f"rank 0 FATAL-{fatal_at} exploded",)
        assert finding.offset == fatal_offset
        await run.until(lambda: run.tail(log).offset == len(data), "the burst read", within=30.0)
        assert run.monitor.lines_scanned == total
        assert run.monitor.bytes_scanned == len(data)
        await run.quiet(0.3)
