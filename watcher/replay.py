"""`pod-watcher replay`: the effective rules over files, offline, as the live watcher reads.

Files are read in the same chunks, through the same line assembler and matcher as the
live path, so memory stays bounded whatever their size and the verdicts are the ones the
watcher would reach. Each match is reported with its 1-based line number.
"""

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol, TextIO

from watcher.logs.evidence import evidence_lines
from watcher.logs.lines import Block
from watcher.logs.tail import Tail
from watcher.policy.rules import configured_action
from watcher.rules.matcher import LineHit, RuleMatcher
from watcher.rules.rule import Rule
from watcher.types import Action, FaultClass, Severity


@dataclass(frozen=True, slots=True)
class ReplayHit:
    """One rule matching one line of one file."""

    file: str
    line: int
    """1-based line number."""
    offset: int
    """Byte offset of the line."""
    rule: Rule
    action: Action
    evidence: tuple[str, ...]

    @property
    def fatal(self) -> bool:
        return self.rule.severity is Severity.FATAL

    def record(self) -> dict[str, object]:
        rule = self.rule
        return {
            "file": self.file,
            "line": self.line,
            "offset": self.offset,
            "reason": rule.reason,
            "severity": rule.severity.value,
            "fault_class": rule.fault_class.value,
            "action": self.action.value,
            "count": rule.count,
            "window_s": rule.window,
            "pack": rule.pack,
            "message": rule.description,
            "evidence": list(self.evidence),
        }

    def text(self) -> str:
        rule = self.rule
        head = f"{self.file}:{self.line}: {rule.reason} [{rule.severity.value}, "
        head += f"{rule.fault_class.value} -> {self.action.value}]"
        return "\n".join([head, *(f"    {line}" for line in self.evidence)])


class Replayer:
    """Scans whole files with one compiled matcher."""

    def __init__(
        self,
        rules: tuple[Rule, ...],
        actions: Mapping[FaultClass, Action],
        *,
        max_line: int,
        chunk: int,
    ) -> None:
        self._matcher = RuleMatcher(rules)
        self._actions = actions
        self.lines_read = 0
        """Lines of every file replayed so far (a last line without newline counts)."""
        self._max_line = max_line
        self._chunk = chunk

    def replay(self, path: str) -> Iterator[ReplayHit]:
        """Every match in ``path``, in file order. Raises OSError if it cannot be read."""
        tail = Tail.open(
            path, from_end=False, resume=None, max_line=self._max_line, chunk=self._chunk
        )
        if tail is None:
            raise OSError(f"{path}: not a readable regular file")
        lines = _LineCounter()
        try:
            more = True
            while more:
                block, more = tail.read_once()
                if block is not None:
                    yield from self._block(path, block, lines)
            last = tail.lines.flush()  # a final line without its newline counts too
            if last is not None:
                yield from self._block(path, last, lines)
            self.lines_read += lines.newlines + (last is not None)
        finally:
            tail.close()

    def _block(self, path: str, block: Block, lines: "_LineCounter") -> Iterator[ReplayHit]:
        for hit in self._matcher.scan_block(block, stream=path):
            yield self._hit(path, block, hit, lines.number(block, hit.line_start))
        lines.finish(block)

    def _hit(self, path: str, block: Block, hit: LineHit, line: int) -> ReplayHit:
        rule = hit.rule
        return ReplayHit(
            file=path,
            line=line,
            offset=block.line_offset(hit.line_start),
            rule=rule,
            action=configured_action(rule, self._actions, rule.action),
            evidence=evidence_lines(block.data, block.end, hit),
        )


class _LineCounter:
    """Line numbers of hits, counting each newline of the file once."""

    def __init__(self) -> None:
        self._before_block = 0
        self._block: Block | None = None
        self._position = 0
        self._count = 0

    def number(self, block: Block, line_start: int) -> int:
        if block is not self._block:
            self._block, self._position, self._count = block, 0, 0
        self._count += block.data.count(b"\n", self._position, line_start)
        self._position = line_start
        return self._before_block + self._count + 1

    def finish(self, block: Block) -> None:
        self._before_block += block.data.count(b"\n", block.seen, block.end)
        self._block = None

    @property
    def newlines(self) -> int:
        """Newlines of the blocks finished so far."""
        return self._before_block


class Hit(Protocol):
    """One line of replay output, whatever was replayed (logs, GPU tool output)."""

    @property
    def fatal(self) -> bool: ...

    def record(self) -> dict[str, object]: ...

    def text(self) -> str: ...


def write_hits(hits: Iterable[Hit], fmt: str, out: TextIO) -> tuple[int, int]:
    """Print the hits as JSON lines or text; return (all hits, fatal hits)."""
    total = fatal = 0
    for hit in hits:
        total += 1
        fatal += hit.fatal
        if fmt == "json":
            out.write(json.dumps(hit.record(), ensure_ascii=False) + "\n")
        else:
            out.write(hit.text() + "\n")
    return total, fatal
