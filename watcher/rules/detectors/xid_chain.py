"""An Xid the driver says was caused by an earlier one, judged by the earlier one.

A clean-up Xid (45: channel torn down, 43: a process's contexts reset) is harmless alone,
but the driver names its cause when there is one: ``... 45, pid=..., Ch 00000001 caused by
previous Xid 149``. That cause decides, and its number is read through the same Xid
catalog the GPU monitor uses (`watcher.gpu.xids.xid_class`): a hardware Xid there makes this line a
fatal hardware finding, an application Xid a warning.
"""

from collections.abc import Iterator

from watcher.gpu.xids import xid_class
from watcher.rules.detectors import LINE_LIMIT, Triggers
from watcher.rules.matcher import LineHit
from watcher.rules.regex import compile_pattern
from watcher.rules.rule import Rule
from watcher.types import Severity

_CAUSE = compile_pattern(r"caused by previous Xid (\d{1,4})\b")


class XidChainDetector:
    """Reports a chained Xid line with the verdict of the Xid that caused it."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self._judged: dict[int, Rule] = {}

    def new_state(self) -> None:
        return None

    def scan(
        self, data: bytes, end: int, first: int, state: None, triggers: Triggers
    ) -> Iterator[LineHit]:
        for hit in triggers.hits:
            cause = _CAUSE.search(hit.line[:LINE_LIMIT])
            if hit.line_start >= first and cause is not None:
                judged = self._judge(int(cause.group(1)))
                if judged is not None:
                    yield LineHit(judged, hit.line_start, hit.line, cause.start())

    def _judge(self, xid: int) -> Rule | None:
        """The rule as reported for a chain caused by ``xid``; None when it is no fault."""
        if xid not in self._judged:
            cause = xid_class(xid)
            if cause.severity is Severity.INFO:
                return None
            note = f"caused by Xid {xid}: {cause.meaning}"
            self._judged[xid] = self.rule.model_copy(
                update={
                    "severity": cause.severity,
                    "fault_class": cause.fault_class,
                    "description": f"{self.rule.description} ({note})".strip(),
                }
            )
        return self._judged[xid]
