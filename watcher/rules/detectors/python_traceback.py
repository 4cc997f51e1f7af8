"""An uncaught Python exception: a traceback from the program's entry to its exception line.

Python prints a traceback for many reasons: an exception nobody caught (the program is
ending), but also one caught and logged (`logging.exception`, a retry loop), one raised in
a thread, in a destructor ("Exception ignored in"), at interpreter shutdown. What tells
the first apart is where the traceback starts: only an exception that unwound the whole
stack has the module's top level as its first frame (``in <module>``, or runpy's
``_run_module_as_main`` for ``python -m``; console scripts like ``torchrun`` are modules
too). So this detector reports the exception line of a traceback whose first frame is the
top level, and stays quiet for the others.

An exception line whose traceback this detector never saw begin (the watcher started
reading after it, or its header was mangled) is reported too, as the likelier case,
unless Python says it ignored it or a traceback just ended. Like every detector's hit, it
gives way to a launcher that says right after that it restarts its workers.

Real logs bend the format: every line may carry a prefix (``[rank3]:``, ``[1,0]<stderr>:``,
a timestamp, a Ray actor's name), ranks interleave their tracebacks line by line, a
progress bar without newline glues itself in front of the header, and a traceback can be
split across two reads. Each open traceback is keyed by its prefix (a line with the exact
prefix first, else one that differs only in digits, so a ticking timestamp still matches
while two ranks stay apart), continues across blocks, and is dropped after
`IDLE_LIMIT` lines that do not belong to it.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from watcher.rules.detectors import Triggers, full_line, lines
from watcher.rules.matcher import LineHit
from watcher.rules.regex import compile_pattern
from watcher.rules.rule import Rule

IDLE_LIMIT = 16
"""Lines in a row that are not part of an open traceback before it is given up; also how
long after a traceback ended an exception line still counts as part of it."""
MAX_TRACES = 16
"""Open tracebacks remembered per stream (one per rank prefix, in practice)."""
MAX_PREFIX = 256

_HEADER = compile_pattern(r"Traceback \(most recent call last\)")
_FRAME = compile_pattern(r'^(.*?)(\s*)File "?[^"]*"?, line \d+, in (\S+)')
_NAME = r"(?:[A-Za-z_]\w*\.)*"
_EXCEPTION = compile_pattern(
    rf"^{_NAME}(?:[A-Za-z_]\w*)?(?:Error|Exception|Failed|Failure|Timeout|Warning)"
    r"(?:\([\w.]*\))?(?::|\s*$)"
)
_PREFIX = r"(?:\S{1,64}: ?)?(?:\[[^\]]{0,64}\]:? ?)?"
"""A logger's or launcher's tag in front of a line: ``rank3: ``, ``[default0]:``."""
_ORPHAN = compile_pattern(rf"^{_PREFIX}{_NAME}[A-Z]\w*(?:Error|Exception)(?:\([\w.]*\))?: ")
_NOT_PYTHON = compile_pattern(rf"(?:^|[\s\]:])(?:LustreError|LNetError): |\.pyw?:\d+: {_NAME}\w+: ")
"""Lines that look like an exception line but are none: the kernel's Lustre and LNet
console messages (``LustreError: 11-0: ... failed: rc = -107``), mostly a client's
recoverable complaints, which the storage rules judge on their own; and a Python warning
as the warnings module prints it (``train.py:31: DeprecationError: ...``, file and line
in front of the category), whatever its category is called."""
_IGNORED = b"Exception ignored in"
_TOP_LEVEL = (b"<module>", b"_run_module_as_main")
_DIGITS = bytes.maketrans(b"123456789", b"000000000")


def _key(prefix: bytes) -> bytes:
    return prefix.rstrip()[:MAX_PREFIX]


@dataclass
class _Trace:
    key: bytes
    """The prefix its lines carry, trailing blanks cut."""
    separator: int
    """Blanks between the prefix and the traceback's own text (its indentation aside)."""
    frames: int = 0
    top: bool = False
    idle: int = 0

    def owns(self, line: bytes, exact: bool) -> bytes | None:
        """The line without this traceback's prefix, if it carries it; digits aside
        unless ``exact`` (a timestamp ticks, a rank number does not)."""
        width = len(self.key)
        if exact and not line.startswith(self.key):
            return None
        if not exact and line[:width].translate(_DIGITS) != self.key.translate(_DIGITS):
            return None
        rest = line[width:]
        blanks = len(rest) - len(rest.lstrip(b" \t"))
        return rest[min(blanks, self.separator) :]


@dataclass
class _State:
    traces: list[_Trace] = field(default_factory=list)
    quiet: int = 0
    """Lines left during which an exception line belongs to the traceback that just ended."""
    ignored: bool = False
    """The line before was Python's "Exception ignored in ..."."""

    def __bool__(self) -> bool:
        return bool(self.traces or self.quiet or self.ignored)


class TracebackDetector:
    """Reports the exception line of a traceback that started at the top level."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule

    def new_state(self) -> _State:
        return _State()

    def scan(
        self, data: bytes, end: int, first: int, state: _State, triggers: Triggers
    ) -> Iterator[LineHit]:
        pos = first
        while pos < end:
            if not state.traces and not state.quiet:
                pos = triggers.line_start(pos)
                if pos < 0:
                    break
                state.ignored = pos > first and _IGNORED in _line_before(data, pos)
            for start, line in lines(data, pos, end):
                hit_at = self._line(line, state)
                if hit_at is not None:
                    yield LineHit(self.rule, start, full_line(data, start, end), hit_at)
                state.ignored = _IGNORED in line
                if not state.traces and not state.quiet:
                    pos = data.find(b"\n", start, end) + 1 or end
                    break
            else:
                break
        state.ignored = end > first and _IGNORED in _line_before(data, end)

    def _line(self, line: bytes, state: _State) -> int | None:
        """Feed one line; the offset of the exception's name when it decides."""
        state.quiet = max(0, state.quiet - 1)
        header = _HEADER.search(line)
        if header is not None:
            prefix = line[: header.start()]
            self._open(state, _Trace(_key(prefix), len(prefix) - len(prefix.rstrip())))
            return None
        for exact in (True, False):
            for trace in sorted(state.traces, key=lambda t: -len(t.key)):
                rest = trace.owns(line, exact)
                if rest is not None:
                    return self._continue(state, trace, line, rest)
        frame = _FRAME.search(line)
        if frame is not None and self._frame(state, frame):
            return None
        self._idle(state, None)
        orphan = _ORPHAN.search(line)
        if orphan is None or state.quiet or state.ignored or _NOT_PYTHON.search(line):
            return None
        state.quiet = IDLE_LIMIT
        return int(orphan.end()) - len(orphan.group(0).lstrip(b"[]:. \t0123456789"))

    def _open(self, state: _State, trace: _Trace) -> None:
        state.traces = [t for t in state.traces if t.key != trace.key or not t.frames]
        if not any(t.key == trace.key for t in state.traces):
            state.traces.append(trace)
        del state.traces[:-MAX_TRACES]

    def _continue(self, state: _State, trace: _Trace, line: bytes, rest: bytes) -> int | None:
        frame = _FRAME.search(rest)
        if frame is not None and not frame.group(1).strip():
            if not trace.frames:
                trace.top = frame.group(3) in _TOP_LEVEL
            trace.frames += 1
            trace.idle = 0
        elif rest[:1] in (b" ", b"\t") and trace.frames:
            trace.idle = 0  # a source line, a caret line, a wrapped frame
        elif trace.frames and _EXCEPTION.search(rest) is not None:
            state.traces.remove(trace)
            state.quiet = IDLE_LIMIT
            return len(line) - len(rest) if trace.top else None
        else:
            self._idle(state, None)
            return None
        self._idle(state, trace)
        return None

    def _frame(self, state: _State, frame: Any) -> bool:
        """A frame no open traceback claims: it belongs to one whose header was glued to
        other output (a progress bar, a log message), or, at the top level, it starts a
        traceback whose header was not seen."""
        prefix, blanks, function = frame.group(1), len(frame.group(2)), frame.group(3)
        waiting = [t for t in state.traces if not t.frames]
        if waiting:
            trace = waiting[-1]
        elif function in _TOP_LEVEL:
            trace = _Trace(b"", 0)
            self._open(state, trace)
        else:
            return False
        trace.key, trace.separator = _key(prefix), max(0, blanks - 2)
        trace.top, trace.frames, trace.idle = function in _TOP_LEVEL, 1, 0
        return True

    def _idle(self, state: _State, busy: _Trace | None) -> None:
        for trace in state.traces:
            if trace is not busy:
                trace.idle += 1
        state.traces = [t for t in state.traces if t.idle <= IDLE_LIMIT]


def _line_before(data: bytes, pos: int) -> bytes:
    """The start of the line that ends just before ``pos`` (a line start)."""
    start = data.rfind(b"\n", 0, pos - 1) + 1
    return data[start : min(pos - 1, start + 256)]
