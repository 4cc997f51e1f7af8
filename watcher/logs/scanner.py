"""Turn the blocks read from one file into findings: one per rule and block.

The scanner runs the rule matcher over a block (with what the multi-line detectors
remember of that file), hands the block to its subscribers first (the progress timers),
and counts what it scanned. It knows nothing of how files are followed.
"""

from collections.abc import Callable, Sequence

from watcher.clock import Clock
from watcher.logs.evidence import evidence_lines
from watcher.logs.lines import Block
from watcher.logs.tail import Tail
from watcher.monitor import Emit
from watcher.rules.matcher import LineHit, RuleMatcher
from watcher.types import Finding

Reader = Callable[[Block], None]
"""A subscriber to every block read."""


class BlockScanner:
    def __init__(
        self, source: str, matcher: RuleMatcher, clock: Clock, readers: Sequence[Reader] = ()
    ) -> None:
        self._source = source
        self._matcher = matcher
        self._clock = clock
        self._readers = tuple(readers)
        self.bytes_scanned = 0
        self.lines_scanned = 0
        self.last_data_at: float | None = None

    def scan(self, tail: Tail, block: Block, emit: Emit) -> None:
        """Emit one finding per rule that matches in ``block``, with how often it did."""
        self.bytes_scanned += block.end - block.seen
        self.lines_scanned += block.data.count(b"\n", block.seen, block.end)
        self.last_data_at = self._clock.monotonic()
        for reader in self._readers:
            reader(block)
        first: dict[str, tuple[LineHit, int]] = {}
        for hit in self._matcher.scan_block(block, stream=tail.file_id):
            earlier = first.get(hit.rule.reason)
            first[hit.rule.reason] = (earlier[0], earlier[1] + 1) if earlier else (hit, 1)
        for hit, count in first.values():
            emit(self._finding(tail, block, hit, count))

    def forget(self, tail: Tail) -> None:
        """The file was truncated or given up: what the detectors saw of it is gone."""
        self._matcher.detectors.forget(tail.file_id)

    def _finding(self, tail: Tail, block: Block, hit: LineHit, count: int) -> Finding:
        rule = hit.rule
        return Finding(
            source=self._source,
            reason=rule.reason,
            severity=rule.severity,
            fault_class=rule.fault_class,
            message=rule.description or f"log line matched rule {rule.reason}",
            at=self._clock.monotonic(),
            evidence=evidence_lines(block.data, block.end, hit),
            file=tail.path,
            offset=block.line_offset(hit.line_start),
            occurrences=count,
        )
