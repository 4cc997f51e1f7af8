"""Detectors: rules whose verdict takes more than one line, or a number read off a line.

A rule with ``detector:`` set is not matched line by line like the others. Its pattern
says where the detector starts looking (a traceback's header, "caused by previous Xid");
the detector reads the lines from there, keeps what it learnt per stream (a file) so a
traceback split across two reads is still one traceback, and reports a `LineHit` on the
line that decides (the exception line, the Xid line).

Cost: a detector's pattern is part of the rule matcher's one RE2 pass over the block (the
matcher hands each detector the lines its pattern matched, `Triggers`); only the lines
after a trigger, up to a bounded number, are looked at in Python, and only their first
`LINE_LIMIT` bytes. State per stream is a few small records, and at most `MAX_STREAMS`
streams are remembered.
"""

from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from heapq import merge
from typing import Any, Protocol

from watcher.rules.matcher import LineHit
from watcher.rules.rule import Rule
from watcher.types import Severity

LINE_LIMIT = 4096
"""Bytes of a line a detector looks at: the start says what kind of line it is."""
MAX_STREAMS = 256
YIELD_LINES = 50
"""How far after a detector's hit a specific fatal rule still takes its place."""


class Detector(Protocol):
    """One detector bound to its rule."""

    rule: Rule

    def new_state(self) -> Any:
        """What it remembers about one stream between reads; true while it waits on the
        lines of the next read (a traceback open), so a read with no trigger in it can be
        passed over when every state is false."""

    def scan(
        self, data: bytes, end: int, first: int, state: Any, triggers: "Triggers"
    ) -> Iterator[LineHit]:
        """Hits in ``data[first:end]`` (whole lines), in line order, updating ``state``;
        ``triggers`` are the lines where the rule's pattern matched."""


class Triggers:
    """The lines of a block where a detector's rule pattern (and excludes) matched, found
    by the rule matcher in its one pass over the block, in line order."""

    def __init__(self, hits: Sequence[LineHit]) -> None:
        self.hits = hits
        self._starts = [hit.line_start for hit in hits]

    def line_start(self, pos: int) -> int:
        """Start of the first trigger line at or after ``pos``, or -1."""
        at = bisect_left(self._starts, pos)
        return self._starts[at] if at < len(self._starts) else -1

    def __contains__(self, line_start: int) -> bool:
        at = bisect_left(self._starts, line_start)
        return at < len(self._starts) and self._starts[at] == line_start


def lines(data: bytes, pos: int, end: int) -> Iterator[tuple[int, bytes]]:
    """(start, first `LINE_LIMIT` bytes without the newline or a carriage return)."""
    while pos < end:
        newline = data.find(b"\n", pos, end)
        stop = end if newline < 0 else newline
        yield pos, data[pos : min(stop, pos + LINE_LIMIT)].rstrip(b"\r")
        pos = stop + 1


def full_line(data: bytes, start: int, end: int) -> bytes:
    """The whole line starting at ``start`` (for the hit's evidence)."""
    newline = data.find(b"\n", start, end)
    return data[start : end if newline < 0 else newline].rstrip(b"\r")


def build(rule: Rule) -> Detector:
    from watcher.rules.detectors.fallback import FallbackDetector
    from watcher.rules.detectors.python_traceback import TracebackDetector
    from watcher.rules.detectors.torchrun_exit import TorchrunExitDetector
    from watcher.rules.detectors.xid_chain import XidChainDetector

    kinds: dict[str, Callable[[Rule], Detector]] = {
        "fallback": FallbackDetector,
        "python-traceback": TracebackDetector,
        "torchrun-exit": TorchrunExitDetector,
        "xid-chain": XidChainDetector,
    }
    assert rule.detector is not None
    return kinds[rule.detector](rule)


class DetectorSet:
    """The detectors of a rule set, with what each remembers per stream."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self._detectors = [build(rule) for rule in rules if rule.detector is not None]
        self._index = {id(d.rule): i for i, d in enumerate(self._detectors)}
        self._streams: OrderedDict[Hashable, list[Any]] = OrderedDict()

    def __bool__(self) -> bool:
        return bool(self._detectors)

    def _states(self, stream: Hashable | None) -> list[Any]:
        if stream is None:
            return [d.new_state() for d in self._detectors]
        states = self._streams.pop(stream, None)
        if states is None:
            states = [d.new_state() for d in self._detectors]
        self._streams[stream] = states  # the most recently used comes last
        while len(self._streams) > MAX_STREAMS:
            self._streams.popitem(last=False)
        return states

    def forget(self, stream: Hashable) -> None:
        self._streams.pop(stream, None)

    def merged(
        self,
        hits: Iterable[LineHit],
        data: bytes,
        end: int,
        *,
        continued: bool,
        stream: Hashable | None,
    ) -> Iterator[LineHit]:
        """The plain rules' hits and the detectors', in line order, from the matcher's
        ``hits`` of every rule (a detector rule's hits are its triggers). A detector's hit
        is generic: it is dropped when, on the same line or one of the `YIELD_LINES` lines
        after it in this block, a plain fatal rule names the failure better, or a
        ``recovery`` rule says it was handled (a launcher restarting its workers)."""
        first = 0
        if continued:  # the block starts inside a line cut at the length cap
            newline = data.find(b"\n", 0, end)
            first = end if newline < 0 else newline + 1
        plain: list[LineHit] = []
        triggers: list[list[LineHit]] = [[] for _ in self._detectors]
        for hit in hits:
            index = self._index.get(id(hit.rule))
            (plain if index is None else triggers[index]).append(hit)
        states = self._states(stream)
        if not any(triggers) and not any(states):  # a state is true while it waits on lines
            yield from plain
            return
        fatal = [h.line_start for h in plain if h.rule.severity is Severity.FATAL]
        recovered = [h.line_start for h in plain if h.rule.recovery]
        found = [
            [
                h
                for h in detector.scan(data, end, first, state, Triggers(mine))
                if not _follows(h, fatal, data) and not _follows(h, recovered, data)
            ]
            for detector, state, mine in zip(self._detectors, states, triggers, strict=True)
        ]
        yield from merge(plain, *found, key=lambda hit: hit.line_start)


def _follows(hit: LineHit, starts: list[int], data: bytes) -> bool:
    """One of ``starts`` (sorted line starts) is the line of ``hit`` or within
    `YIELD_LINES` lines after it."""
    at = bisect_left(starts, hit.line_start)
    return at < len(starts) and data.count(b"\n", hit.line_start, starts[at]) <= YIELD_LINES
