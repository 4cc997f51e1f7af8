"""A log rule: a named regex with excludes, a severity, a fault class and a threshold.

Rules are data. They are validated when the configuration loads, so a rule that cannot
compile is a start-up error that names it, never a surprise at the first matching line.
"""

import re
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from watcher.rules.regex import PatternError, compile_pattern
from watcher.types import Action, FaultClass, Severity

CAMEL_CASE = re.compile(r"^[A-Z][A-Za-z0-9]*$")

NonEmptyStr = Annotated[str, Field(min_length=1)]
DetectorName = Literal["fallback", "python-traceback", "torchrun-exit", "xid-chain"]
"""The built-in detectors (watcher/rules/detectors/): logic over several lines or a number."""


class Rule(BaseModel):
    """One named pattern, matched against each line of the watched logs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str
    """CamelCase name (``NcclWatchdogTimeout``): the finding's reason and the Event reason."""
    pattern: NonEmptyStr
    """RE2 syntax, matched anywhere in one line, byte semantics."""
    exclude: tuple[NonEmptyStr, ...] = ()
    """A line matching any of these is not a match, whatever ``pattern`` says."""
    severity: Severity = Severity.FATAL
    fault_class: FaultClass = FaultClass.TRANSIENT
    ignore_case: bool = False
    count: int = Field(default=1, ge=1)
    """Act only once the rule matched this many times..."""
    window: float = Field(default=0.0, ge=0)
    """...within this many seconds (required when ``count`` > 1)."""
    action: Action | None = None
    """Override the action of the fault class (e.g. ``hold`` for a rule you only trust so far)."""
    context_lines: int = Field(default=0, ge=0, le=20)
    """Lines after the match kept as evidence when they arrived with it (e.g. CUDA's hints)."""
    description: str = ""
    """One line for humans: what it means and what to do."""
    recovery: bool = False
    """The line says a failure reported just before was handled (a launcher restarting
    its workers): a detector's generic finding on the lines before it is withdrawn."""
    detector: DetectorName | None = None
    """A detector judges the lines instead of the pattern alone: ``pattern`` says where it
    starts looking (a traceback's header), the detector decides over the lines that follow,
    across reads (watcher/rules/detectors/)."""
    pack: str | None = None
    """The built-in pack this rule came from; ``None`` for the user's own rules."""

    @field_validator("reason")
    @classmethod
    def _camel_case(cls, value: str) -> str:
        if not CAMEL_CASE.match(value):
            raise ValueError(
                f"reason {value!r} must be CamelCase (letters and digits, starting with a "
                "capital), like NcclWatchdogTimeout"
            )
        return value

    @model_validator(mode="after")
    def _compiles(self) -> Self:
        for field_name, pattern in self._patterns():
            try:
                compiled = compile_pattern(pattern)
            except PatternError as exc:
                raise ValueError(f"rule {self.reason}: {field_name}: {exc}") from None
            if field_name == "pattern" and compiled.search(b"") is not None:
                raise ValueError(
                    f"rule {self.reason}: pattern {pattern!r} matches an empty line, "
                    "so it would fire on every line"
                )
        if self.count > 1 and self.window <= 0:
            raise ValueError(f"rule {self.reason}: count {self.count} needs a window > 0 seconds")
        return self

    def _patterns(self) -> list[tuple[str, str]]:
        found = [("pattern", self.pattern)]
        found += [(f"exclude[{i}]", p) for i, p in enumerate(self.exclude)]
        return found

    def _flagged(self, pattern: str) -> str:
        return f"(?i:{pattern})" if self.ignore_case else pattern

    @property
    def effective_pattern(self) -> str:
        """The pattern with the rule's flags applied, ready to join into an alternation."""
        return self._flagged(self.pattern)

    @property
    def effective_excludes(self) -> tuple[str, ...]:
        return tuple(self._flagged(p) for p in self.exclude)

    def summary(self) -> dict[str, Any]:
        """The rule as `pod-watcher check` prints it."""
        return self.model_dump(mode="json", exclude_defaults=False)
