"""Cut a byte stream into blocks of whole lines, with bounded memory for endless lines."""

from dataclasses import dataclass

OVERLAP = 4096
"""Bytes of a cut line kept for the next block, so a match straddling the cut is found."""


@dataclass(frozen=True, slots=True)
class Block:
    """Bytes ready to scan: ``data[:end]`` holds whole lines (or a cut piece of a long one)."""

    data: bytes
    end: int
    base: int
    """File offset of ``data[0]``."""
    seen: int = 0
    """``data[:seen]`` was already counted as the end of the previous, cut piece."""
    report_before: int | None = None
    """For a cut piece: report only matches starting before this offset. Later ones
    start in the overlap, which the next piece scans again and reports."""
    cut_line_at: int | None = None
    """When ``data``'s first line is the rest of a cut line: the file offset it began at."""

    def line_offset(self, line_start: int) -> int:
        """File offset of the line that starts at ``line_start`` in ``data``."""
        if line_start == 0 and self.cut_line_at is not None:
            return self.cut_line_at
        return self.base + line_start


class LineAssembler:
    """Carries the unfinished last line of each read over to the next one.

    A line longer than ``max_line`` is scanned in pieces of about that size; the last
    ``OVERLAP`` bytes of each piece are scanned again with the next, so a match up to
    ``OVERLAP`` bytes long straddling a cut is found, and reported once: by the piece in
    which it starts outside the overlap. Memory stays below ``max_line`` plus one read.
    """

    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._carry = b""
        self._carry_base = 0
        self._seen = 0
        self._cut_line_at: int | None = None
        self.cut_lines = 0
        """How many times a line was cut because it exceeded ``max_line``."""

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line waiting for their newline."""
        return len(self._carry)

    @property
    def next_offset(self) -> int | None:
        """File offset where the unfinished line starts, if there is one."""
        return self._carry_base if self._carry else None

    def reset(self) -> None:
        """Forget the unfinished line (the file was truncated or replaced)."""
        self._carry = b""
        self._seen = 0
        self._cut_line_at = None

    def feed(self, chunk: bytes, offset: int, *, with_carry: bool = False) -> Block | None:
        """Add ``chunk`` read at file ``offset``; return the whole lines it completes.

        ``with_carry``: the read began at the unfinished line (`next_offset`), so
        ``chunk`` starts with it again and is used as it is, not copied behind it: a
        copy of each chunk saved. Should the file's bytes there differ (rewritten in
        place), the carried bytes win, as if the read had begun after them."""
        carry = self._carry
        if carry and with_carry:
            same = chunk.startswith(carry)
            data = chunk if same else carry + chunk[len(carry) :]
            base = self._carry_base
        elif carry:
            data, base = carry + chunk, self._carry_base
        else:
            data, base = chunk, offset
        newline = data.rfind(b"\n")
        if newline >= 0:
            end = newline + 1
            block = Block(data, end, base, self._seen, cut_line_at=self._cut_line_at)
            self._carry, self._carry_base, self._seen = data[end:], base + end, 0
            self._cut_line_at = None
            return block
        if len(data) <= self.max_line:
            self._carry, self._carry_base = data, base
            return None
        return self._cut(data, base)

    def _cut(self, data: bytes, base: int) -> Block:
        keep = min(OVERLAP, len(data))
        block = Block(
            data, len(data), base, self._seen, len(data) - keep, cut_line_at=self._cut_line_at
        )
        if self._cut_line_at is None:
            self._cut_line_at = base
        self._carry = data[-keep:]
        self._carry_base = base + len(data) - keep
        self._seen = keep
        self.cut_lines += 1
        return block

    def flush(self) -> Block | None:
        """Hand out the unfinished line as if it were whole (its file is gone for good)."""
        if not self._carry:
            return None
        block = Block(
            self._carry,
            len(self._carry),
            self._carry_base,
            self._seen,
            cut_line_at=self._cut_line_at,
        )
        self.reset()
        return block
