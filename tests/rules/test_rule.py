"""Rule validation: a rule that cannot run is refused at load, with its name in the message."""

import pytest
from pydantic import ValidationError

from watcher.rules.rule import Rule
from watcher.types import FaultClass, Severity


def make(**fields: object) -> Rule:
    return Rule.model_validate({"reason": "SomeFault", "pattern": "boom", **fields})


def error_text(**fields: object) -> str:
    with pytest.raises(ValidationError) as caught:
        make(**fields)
    return str(caught.value)


def test_defaults_are_fatal_transient() -> None:
    rule = make()
    assert rule.severity is Severity.FATAL
    assert rule.fault_class is FaultClass.TRANSIENT
    assert rule.count == 1


@pytest.mark.parametrize("reason", ["nccl_timeout", "ncclTimeout", "Nccl Timeout", "", "1Nccl"])
def test_reason_must_be_camel_case(reason: str) -> None:
    assert "CamelCase" in error_text(reason=reason)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("foo(?=bar)", "look-ahead"),
        ("foo(?!bar)", "negative look-ahead"),
        ("(?<=foo)bar", "look-behind"),
        ("(?<!foo)bar", "negative look-behind"),
        (r"(a)\1", "backreferences"),
        ("(?P<x>a)(?P=x)", "backreferences"),
        ("(?>a)", "atomic"),
        (r"\Afoo", "one line at a time"),
        (r"foo\z", "one line at a time"),
        ("foo[", "invalid regular expression"),
    ],
)
def test_unsupported_patterns_name_the_rule_and_the_problem(pattern: str, expected: str) -> None:
    text = error_text(reason="BadRule", pattern=pattern)
    assert "BadRule" in text
    assert expected in text


def test_an_escaped_backslash_before_a_is_not_an_anchor() -> None:
    assert make(pattern=r"C:\\Apps").pattern == r"C:\\Apps"


def test_bad_exclude_is_named() -> None:
    text = error_text(reason="BadExclude", exclude=["ok", "(?=no)"])
    assert "BadExclude: exclude[1]" in text


@pytest.mark.parametrize("pattern", ["x*", "^$", "(a|)", ".?"])
def test_patterns_matching_the_empty_line_are_refused(pattern: str) -> None:
    assert "matches an empty line" in error_text(pattern=pattern)


def test_count_needs_a_window() -> None:
    assert "needs a window" in error_text(count=3)
    assert make(count=3, window=60).window == 60


def test_unknown_fields_are_refused() -> None:
    assert "patern" in error_text(patern="typo")


def test_ignore_case_wraps_pattern_and_excludes() -> None:
    rule = make(pattern="a|b", exclude=["c"], ignore_case=True)
    assert rule.effective_pattern == "(?i:a|b)"
    assert rule.effective_excludes == ("(?i:c)",)


def test_invalid_pattern_is_refused_even_when_wrapping_would_balance_it() -> None:
    assert "invalid regular expression" in error_text(pattern="a)|(b", ignore_case=True)
