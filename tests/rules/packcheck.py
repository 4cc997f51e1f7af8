"""Checks shared by the per-pack tests: one line in, the rules that fire out."""

from watcher.rules.matcher import RuleMatcher
from watcher.types import Severity


def reasons(matcher: RuleMatcher, line: str) -> list[str]:
    """Reasons of every rule matching ``line``, in rule order."""
    return [hit.rule.reason for hit in matcher.scan(line.encode() + b"\n")]


def assert_fires_first(matcher: RuleMatcher, reason: str, line: str) -> None:
    """``reason`` is the first rule to match ``line``, and every match is fatal."""
    hits = list(matcher.scan(line.encode() + b"\n"))
    assert [hit.rule.reason for hit in hits][:1] == [reason], line
    assert all(hit.rule.severity is Severity.FATAL for hit in hits), line


def assert_quiet(matcher: RuleMatcher, line: str) -> None:
    assert reasons(matcher, line) == [], line
