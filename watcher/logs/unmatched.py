"""Globs that match nothing: after a startup grace, each is reported once (a log line
and a warning finding) and listed in /status for as long as it matches nothing."""

import logging

from watcher.logs.files import TrackedFiles
from watcher.types import FaultClass, Finding, Severity

log = logging.getLogger(__name__)

REASON = "LogGlobMatchesNothing"


class UnmatchedGlobs:
    """Which globs match no path at all (followed or refused), once the grace is over."""

    def __init__(self, files: TrackedFiles, grace: float | None) -> None:
        self._files = files
        self.grace = grace
        self._due: float | None = None
        self.reported: set[str] = set()
        self.now: list[str] | None = None
        """Globs matching nothing now; None until the grace is over."""

    def start(self, at: float) -> None:
        """The monitor started at loop time ``at``."""
        self._due = None if self.grace is None else at + self.grace

    def due(self) -> float:
        """Loop time of the first look (infinity once looked, or never)."""
        return float("inf") if self._due is None or self.now is not None else self._due

    def check(self, loop_now: float, monotonic_now: float) -> list[Finding]:
        """Findings for globs newly found matching nothing; keeps ``now`` current."""
        if self.now is None and self.due() > loop_now:
            return []
        globs = self._files.globs
        paths = [*self._files.by_path, *self._files.refused.by_path]
        matched = {pattern for path in paths for pattern in globs.patterns_matching(path)}
        self.now = [pattern for pattern in globs.patterns if pattern not in matched]
        findings = []
        for pattern in self.now:
            if pattern not in self.reported:
                self.reported.add(pattern)
                findings.append(self._finding(pattern, monotonic_now))
        return findings

    def _finding(self, pattern: str, at: float) -> Finding:
        message = f"the log glob {pattern} matches no file {self.grace:g}s after start"
        log.warning(
            "a log glob matches nothing: check WATCHER_LOG_PATHS",
            extra={"fields": {"glob": pattern, "grace_s": self.grace}},
        )
        return Finding(
            source="log",
            reason=REASON,
            severity=Severity.WARNING,
            fault_class=FaultClass.INFRASTRUCTURE,
            message=message,
            at=at,
            evidence=(message,),
        )
