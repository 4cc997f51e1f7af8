"""What the matcher relies on in RE2 and its Python wrapper, pinned: byte (Latin-1)
semantics, and the wrapper's private unanchored search that the hot path calls."""

import re2

from watcher.rules.matcher import RuleMatcher
from watcher.rules.regex import compile_pattern, options
from watcher.rules.rule import Rule


def reasons(rules: list[Rule], data: bytes) -> list[str]:
    return [hit.rule.reason for hit in RuleMatcher(rules).scan(data + b"\n")]


def test_a_dot_is_one_byte_not_one_character() -> None:
    """Latin-1 semantics: `é` is two bytes in a UTF-8 log, so `^..$` matches it; with
    UTF-8 semantics it would be one character and fail. Switching engines' encoding must
    break this test."""
    two_bytes = Rule(reason="TwoBytes", pattern="^..$")
    assert reasons([two_bytes], "é".encode()) == ["TwoBytes"]
    assert reasons([two_bytes], b"ab") == ["TwoBytes"]
    assert reasons([two_bytes], "€".encode()) == []  # three bytes


def test_invalid_utf8_is_matched_byte_by_byte() -> None:
    garbage = Rule(reason="Garbage", pattern=r"x.y")
    assert reasons([garbage], b"x\xffy") == ["Garbage"]  # UTF-8 semantics would not match
    assert compile_pattern(r"x.y").search(b"x\xffy") is not None


def test_a_non_ascii_literal_matches_its_utf8_bytes() -> None:
    accented = Rule(reason="Accented", pattern="erreur fatale: échec")
    assert reasons([accented], "erreur fatale: échec du point".encode()) == ["Accented"]
    assert reasons([accented], b"erreur fatale: echec") == []


def test_w_and_d_are_ascii_only() -> None:
    word = Rule(reason="Word", pattern=r"^\w+$")
    assert reasons([word], b"abc_123") == ["Word"]
    assert reasons([word], "café".encode()) == []  # é is no \w byte under Latin-1


def test_the_wrappers_private_search_is_there_and_unanchored() -> None:
    """A canary: the matcher calls the wrapper's `_regexp.Match(_Anchor.UNANCHORED, ...)`
    for speed. If a google-re2 release renames them, this fails before anything else."""
    compiled = re2.compile(b"needle", options())
    spans = compiled._regexp.Match(re2._Anchor.UNANCHORED, b"hay needle hay", 0, 14)
    assert spans[0] == (4, 10)
    none = compiled._regexp.Match(re2._Anchor.UNANCHORED, b"only hay", 0, 8)
    assert none[0][0] == -1
