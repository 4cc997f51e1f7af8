"""torchrun's report of a failed worker, made fatal once torchrun itself gives up.

When a worker exits non-zero, the elastic agent logs ``failed (exitcode: N) local_rank: ...``.
With restarts left it then says it ``will restart worker group`` and the run goes on, so
the line alone is only a warning (`TorchWorkerFailed`). Without restarts left the agent
raises out of its own entry point instead: a traceback starting in ``torchrun`` (or
``torch/distributed/run.py``) follows at once, long before its last line names the
``ChildFailedError``. This detector watches the lines after each report and reports it
fatal when that traceback starts, and not when the agent restarts the group.
"""

from collections.abc import Iterator
from dataclasses import dataclass

from watcher.rules.detectors import Triggers, full_line, lines
from watcher.rules.matcher import LineHit
from watcher.rules.regex import compile_pattern
from watcher.rules.rule import Rule

LOOKAHEAD = 12
"""Lines after the report within which the agent restarts the group or raises."""

_LAUNCHER_FRAME = compile_pattern(
    r'File "[^"]*(?:/torchrun|torch/distributed/(?:run|launch)\.py)", line \d+, in <module>'
)
_RESTART = compile_pattern(r"will restart worker group|Restarting worker group")


@dataclass
class _State:
    report: bytes = b""
    """The failure report waiting for the agent's next move; empty when none waits."""
    left: int = 0

    def __bool__(self) -> bool:
        return bool(self.report)


class TorchrunExitDetector:
    """Reports torchrun's failure report when the agent then raises out of main."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule

    def new_state(self) -> _State:
        return _State()

    def scan(
        self, data: bytes, end: int, first: int, state: _State, triggers: Triggers
    ) -> Iterator[LineHit]:
        pos = first
        while pos < end:
            if not state.report:
                pos = triggers.line_start(pos)
                if pos < 0:
                    return
                state.report, state.left = full_line(data, pos, end), LOOKAHEAD
                pos = data.find(b"\n", pos, end) + 1 or end
                continue
            for start, line in lines(data, pos, end):
                pos = data.find(b"\n", start, end) + 1 or end
                if start in triggers:
                    state.report, state.left = full_line(data, start, end), LOOKAHEAD
                elif _LAUNCHER_FRAME.search(line) is not None:
                    yield LineHit(self.rule, start, state.report, 0)
                    state.report = b""
                elif _RESTART.search(line) is not None or state.left <= 1:
                    state.report = b""
                else:
                    state.left -= 1
                if not state.report:
                    break
