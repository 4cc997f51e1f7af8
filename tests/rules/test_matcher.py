"""The block scanner finds exactly the (rule, line) pairs a line-by-line check would."""

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.rules.matcher import RuleMatcher
from watcher.rules.rule import Rule
from watcher.types import Severity

RULES = [
    Rule(reason="Timeout", pattern=r"collective timeout after \d+ ms", exclude=("INFO",)),
    Rule(reason="Illegal", pattern="illegal memory access", ignore_case=True),
    Rule(reason="Anchored", pattern=r"^FATAL:"),
    Rule(reason="Ending", pattern=r"died$"),
    Rule(reason="Word", pattern=r"\bOOM\b", severity=Severity.WARNING),
]


def naive(data: bytes, rules: list[Rule]) -> list[tuple[str, int]]:
    """Line by line with Python's re on bytes: the reference semantics."""
    found = []
    start = 0
    for line in data.split(b"\n")[:-1]:
        for rule in rules:
            flags = re.IGNORECASE if rule.ignore_case else 0
            if re.search(rule.pattern.encode(), line, flags) and not any(
                re.search(ex.encode(), line, flags) for ex in rule.exclude
            ):
                found.append((rule.reason, start))
        start += len(line) + 1
    return found


def scanned(data: bytes, rules: list[Rule]) -> list[tuple[str, int]]:
    return [(hit.rule.reason, hit.line_start) for hit in RuleMatcher(rules).scan(data)]


def test_finds_each_rule_on_its_line() -> None:
    data = (
        b"step 1 ok\n"
        b"NCCL collective timeout after 600000 ms\n"
        b"INFO collective timeout after 5 ms (benign)\n"
        b"CUDA error: an Illegal Memory Access was encountered\n"
        b"not FATAL: at start\n"
        b"FATAL: at start\n"
        b"worker died\n"
        b"worker died twice\n"
        b"OOMKilled is not a word match, but OOM is\n"
    )
    assert scanned(data, RULES) == naive(data, RULES)
    assert [reason for reason, _ in scanned(data, RULES)] == [
        "Timeout",
        "Illegal",
        "Anchored",
        "Ending",
        "Word",
    ]


def test_line_text_and_match_position() -> None:
    data = b"aaa\nxx illegal memory access yy\nbbb\n"
    (hit,) = RuleMatcher(RULES).scan(data)
    assert hit.line == b"xx illegal memory access yy"
    assert hit.line_start == 4
    assert hit.match_start == 3


def test_one_line_matching_two_rules_gives_both_in_rule_order() -> None:
    data = b"FATAL: illegal memory access, worker died\n"
    assert [h.rule.reason for h in RuleMatcher(RULES).scan(data)] == [
        "Illegal",
        "Anchored",
        "Ending",
    ]


def test_end_limits_the_scan() -> None:
    data = b"fine\nFATAL: later\n"
    assert list(RuleMatcher(RULES).scan(data, end=5)) == []


def test_only_matches_starting_before_the_limit_are_reported() -> None:
    matcher = RuleMatcher([Rule(reason="Boom", pattern="boom [0-9]+")])
    piece = b"xx boom 4"
    assert [h.match_start for h in matcher.scan(piece)] == [3]
    assert list(matcher.scan(piece, report_before=3)) == []
    assert [h.match_start for h in matcher.scan(piece, report_before=4)] == [3]


def test_invalid_utf8_and_nul_bytes_do_not_disturb_matching() -> None:
    data = b"\xff\xfe\x00garbage\x80 illegal memory access \xc3\x28\n\x00\x00\n"
    assert scanned(data, RULES) == [("Illegal", 0)]


def test_no_rules_scans_nothing() -> None:
    assert list(RuleMatcher([]).scan(b"FATAL: x\n")) == []


PIECES = [
    b"step 12 loss 0.5",
    b"collective timeout after 42 ms",
    b"INFO",
    b"ILLEGAL memory ACCESS",
    b"FATAL:",
    b"died",
    b"OOM",
    b"OOMx",
    b" ",
    b"\xff\x00",
    b"\r",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(PIECES), max_size=6), max_size=40))
def test_block_scan_equals_line_by_line_reference(lines: list[list[bytes]]) -> None:
    data = b"".join(b"".join(parts) + b"\n" for parts in lines)
    assert scanned(data, RULES) == naive(data, RULES)
