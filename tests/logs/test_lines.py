"""LineAssembler on its own: whole lines out, unfinished lines carried, endless lines cut."""

from collections.abc import Iterator

from hypothesis import given
from hypothesis import strategies as st

from watcher.logs.lines import OVERLAP, Block, LineAssembler


def feed_all(
    lines: LineAssembler, stream: bytes, sizes: list[int], *, reread: bool = False
) -> Iterator[Block]:
    """Feed ``stream`` in pieces of the given sizes (cycled), yielding the blocks; with
    ``reread``, each read begins at the unfinished line, as `Tail` reads."""
    at = 0
    index = 0
    while at < len(stream):
        size = sizes[index % len(sizes)] if sizes else len(stream)
        index += 1
        again = lines.pending if reread else 0
        block = lines.feed(stream[at - again : at + size], at - again, with_carry=again > 0)
        at += size
        if block is not None:
            yield block


def test_whole_lines_come_out_at_their_offset() -> None:
    lines = LineAssembler(4096)
    block = lines.feed(b"one\ntwo\n", 100)
    assert block == Block(b"one\ntwo\n", 8, 100, 0)
    assert lines.pending == 0 and lines.next_offset is None


def test_an_unfinished_line_is_carried_until_its_newline() -> None:
    lines = LineAssembler(4096)
    block = lines.feed(b"one\ntw", 0)
    assert block is not None and block.data[: block.end] == b"one\n"
    assert (lines.pending, lines.next_offset) == (2, 4)
    assert lines.feed(b"o and", 6) is None
    assert (lines.pending, lines.next_offset) == (7, 4)
    block = lines.feed(b" more\nthree", 11)
    assert block is not None
    assert (block.data[: block.end], block.base, block.seen) == (b"two and more\n", 4, 0)
    assert (lines.pending, lines.next_offset) == (5, 17)


def test_a_line_longer_than_max_line_is_cut_with_an_overlap() -> None:
    max_line = OVERLAP + 100
    lines = LineAssembler(max_line)
    assert lines.feed(b"a" * max_line, 0) is None
    cut = lines.feed(b"b" * 50, max_line)
    assert cut is not None
    assert (cut.base, cut.end, cut.seen) == (0, max_line + 50, 0)
    assert lines.cut_lines == 1
    assert (lines.pending, lines.next_offset) == (OVERLAP, max_line + 50 - OVERLAP)
    rest = lines.feed(b"c\nd", max_line + 50)
    assert rest is not None
    assert (rest.base, rest.seen, rest.end) == (max_line + 50 - OVERLAP, OVERLAP, OVERLAP + 2)
    assert rest.data[: rest.end] == b"a" * (OVERLAP - 50) + b"b" * 50 + b"c\n"


def test_flush_hands_out_the_unfinished_line_and_reset_forgets_it() -> None:
    lines = LineAssembler(4096)
    lines.feed(b"x\nlast words", 0)
    block = lines.flush()
    assert block == Block(b"last words", 10, 2, 0)
    assert lines.flush() is None
    lines.feed(b"half", 12)
    lines.reset()
    assert (lines.pending, lines.next_offset) == (0, None)
    block = lines.feed(b"new\n", 0)
    assert block == Block(b"new\n", 4, 0, 0)


short_lines = st.lists(st.binary(max_size=63).map(lambda b: b.replace(b"\n", b"")), max_size=40)
sizes = st.lists(st.integers(min_value=1, max_value=100), max_size=20)


@given(short_lines, st.binary(max_size=63), sizes)
def test_short_lines_come_out_whole_at_their_offsets(
    whole: list[bytes], partial: bytes, pieces: list[int]
) -> None:
    partial = partial.replace(b"\n", b"")
    stream = b"".join(line + b"\n" for line in whole) + partial
    lines = LineAssembler(64)
    out = b""
    for block in feed_all(lines, stream, pieces):
        assert block.seen == 0
        assert block.base == len(out)
        assert block.data[: block.end].endswith(b"\n")
        out += block.data[: block.end]
    assert out.split(b"\n")[:-1] == whole
    assert lines.pending == len(partial)
    assert lines.next_offset == (len(out) if partial else None)
    assert lines.cut_lines == 0


long_lines = st.lists(
    st.tuples(st.integers(min_value=0, max_value=3 * OVERLAP), st.sampled_from(b"a\x00\xff")),
    max_size=8,
)


@given(long_lines, st.booleans(), st.lists(st.integers(1, 2 * OVERLAP), max_size=8))
def test_any_stream_is_scanned_exactly_once_in_bounded_memory(
    shape: list[tuple[int, int]], finished: bool, pieces: list[int]
) -> None:
    max_line = OVERLAP + 64
    stream = b"\n".join(bytes([fill]) * length for length, fill in shape)
    stream += b"\n" if finished and stream else b""
    lines = LineAssembler(max_line)
    scanned = 0
    for block in feed_all(lines, stream, pieces):
        assert block.data[: block.end] == stream[block.base : block.base + block.end]
        assert block.base + block.seen == scanned  # nothing skipped, nothing scanned twice
        assert block.seen <= OVERLAP
        scanned = block.base + block.end
        assert lines.pending <= max_line + 2 * OVERLAP
        cut = not block.data[: block.end].endswith(b"\n")
        assert not cut or block.end > max_line
    unscanned = stream[scanned:]
    assert b"\n" not in unscanned
    if lines.pending:
        assert lines.next_offset is not None
        assert lines.next_offset + lines.pending == len(stream)
    else:
        assert not unscanned
    last = lines.flush()
    if last is not None:
        assert last.base + last.seen == scanned
        assert last.data[last.seen : last.end] == unscanned


def lines_of(blocks: Iterator[Block]) -> list[tuple[bytes, int, int, int | None, int | None]]:
    return [(b.data[: b.end], b.base, b.seen, b.report_before, b.cut_line_at) for b in blocks]


@given(
    st.lists(st.sampled_from([b"a", b"bb", b"\n", b"x" * 300, b"FATAL\n"]), max_size=40),
    st.lists(st.integers(1, 700), min_size=1, max_size=5),
)
def test_reading_the_unfinished_line_again_gives_the_same_blocks(
    pieces: list[bytes], sizes: list[int]
) -> None:
    stream = b"".join(pieces)
    plain = lines_of(feed_all(LineAssembler(512), stream, sizes))
    assert lines_of(feed_all(LineAssembler(512), stream, sizes, reread=True)) == plain


def test_carried_bytes_win_over_a_rewrite_in_place() -> None:
    lines = LineAssembler(4096)
    lines.feed(b"one\ntw", 0)
    block = lines.feed(b"XX and more\n", 4, with_carry=True)  # "tw" rewritten as "XX"
    assert block is not None
    assert (block.data[: block.end], block.base) == (b"tw and more\n", 4)
