"""The literal prefilter changes how fast rules run, never what they find: the same
matches as the plain path (one RE2 automaton over the block), on the corpora and on
generated rules and lines."""

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watcher.rules.literals import required
from watcher.rules.matcher import RuleMatcher
from watcher.rules.packs import load_pack
from watcher.rules.prefilter import Prefilter, usable
from watcher.rules.rule import Rule

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
PACKS = ("cuda", "jax", "nccl", "pytorch", "system", "xid")


def hits(
    matcher: RuleMatcher, data: bytes, report_before: int | None = None
) -> list[tuple[str, int, int]]:
    return [
        (hit.rule.reason, hit.line_start, hit.match_start)
        for hit in matcher.scan(data, report_before=report_before)
    ]


@pytest.mark.parametrize(
    ("pattern", "literals", "folded"),
    [
        (
            "Watchdog caught collective operation timeout",
            {b"Watchdog caught collective operation timeout"},
            False,
        ),
        (r"nccl(Internal|System)Error", {b"ncclInternalError", b"ncclSystemError"}, False),
        (r"NCCL WARN .*NET/IB.*(failed|error)", {b"NCCL WARN "}, False),
        (
            r"(?i:too many open files)|received 0 items",
            {b"too many open files", b"received 0 items"},
            True,
        ),
        (r"abc(?i)def|ghi", {b"abcdef", b"ghi"}, True),  # (?i) reaches the next branch
        (r"(?:ab)?cde", {b"cde"}, False),
        (r"x{2}yz", {b"xxyz"}, False),
        (r"ab{,3}", {b"ab{,3}"}, False),  # not a repetition in RE2: literal braces
        (r"Error(?:\x1b\[[0-9;]*m)*: ", {b"Error\x1b[", b"Error: "}, False),
        ("é?xyz", {b"\xc3xyz", b"\xc3\xa9xyz"}, False),  # ? binds to the last byte in RE2
        (r"\d+ seconds", {b" seconds"}, False),
    ],
)
def test_required_literals(pattern: str, literals: set[bytes], folded: bool) -> None:
    found = required(pattern)
    assert found is not None
    assert found.literals == literals
    assert found.folded is folded


@pytest.mark.parametrize(
    "pattern",
    [r"[0-9]+", "a|", r"(?i:é)", r"\p{Greek}+", r"\Qab\E", r"\101", "(?i)loss", "ab"],
)
def test_no_literal_it_cannot_vouch_for(pattern: str) -> None:
    """Unknown syntax, no literal, a literal too short or inside a common word."""
    assert not usable(required(pattern))


def test_a_common_word_is_not_a_literal_worth_searching() -> None:
    prefilter = Prefilter(["(?i)loss", "Watchdog caught collective operation timeout"])
    assert prefilter.covered == (1,)  # "loss" is on every step line


@pytest.mark.parametrize("pack", PACKS)
def test_the_corpora_give_the_same_matches_with_and_without_the_prefilter(pack: str) -> None:
    rules = load_pack(pack)
    plain, filtered = RuleMatcher(rules, prefilter=False), RuleMatcher(rules, prefilter=True)
    assert filtered._prefilter is not None
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file())
    assert files
    for path in files:
        data = path.read_bytes()
        data = data if data.endswith(b"\n") else data + b"\n"
        assert hits(filtered, data) == hits(plain, data), path


def test_all_packs_at_once_give_the_same_matches() -> None:
    rules = [rule for pack in PACKS for rule in load_pack(pack)]
    plain, filtered = RuleMatcher(rules, prefilter=False), RuleMatcher(rules, prefilter=True)
    data = b"".join(
        p.read_bytes().rstrip(b"\n") + b"\n" for p in sorted(CORPUS.rglob("*")) if p.is_file()
    )
    found = hits(filtered, data)
    assert found == hits(plain, data)
    assert len(found) > 50


# --- generated rules and lines ---------------------------------------------------------

ALPHABET = "abcAB :-_(é"
literal = st.text(alphabet="abcAB :-_", min_size=1, max_size=4).map(
    lambda s: "".join("\\" + c if c in "(" else c for c in s)
)


def _pattern(depth: int) -> st.SearchStrategy[str]:
    atoms = st.one_of(
        literal,
        st.sampled_from([".", r"\d", r"\w", r"\b", "^", "$", "[ab]", "[^a]", r"\(", "é", "\\x41"]),
    )
    if depth == 0:
        return atoms
    inner = _pattern(depth - 1)
    group = st.tuples(st.sampled_from(["(", "(?:", "(?i:", "(?P<g>"]), inner).map(
        lambda t: f"{t[0]}{t[1]})"
    )
    quantified = st.tuples(
        st.one_of(atoms, group),
        st.sampled_from(["", "", "*", "+", "?", "{2}", "{1,3}", "{2,}", "*?", "{,2}"]),
    ).map("".join)
    concat = st.lists(quantified, min_size=1, max_size=4).map("".join)
    flagged = st.tuples(st.sampled_from(["", "", "(?i)"]), concat).map("".join)
    return st.lists(flagged, min_size=1, max_size=3).map("|".join)


def _rules(patterns: list[str]) -> list[Rule]:
    rules = []
    for index, pattern in enumerate(patterns):
        try:
            rules.append(Rule(reason=f"Gen{index}", pattern=pattern, ignore_case=index % 3 == 2))
        except ValueError:  # RE2 refuses it, or it matches an empty line
            continue
    return rules


lines = st.lists(st.text(alphabet=ALPHABET, max_size=30), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_pattern(2), min_size=1, max_size=4), lines, st.data())
def test_generated_rules_and_lines_give_the_same_matches(
    patterns: list[str], text: list[str], data: st.DataObject
) -> None:
    rules = _rules(patterns)
    if not rules:
        return
    # lines built from pieces of the patterns too, so that rules do match
    pieces = [p.replace("\\", "") for p in patterns]
    extra = data.draw(st.lists(st.sampled_from(pieces), max_size=6))
    block = ("\n".join(text + extra) + "\n").encode("utf-8")
    plain, filtered = RuleMatcher(rules, prefilter=False), RuleMatcher(rules, prefilter=True)
    assert hits(filtered, block) == hits(plain, block)
    cut = data.draw(st.integers(0, len(block)))
    assert hits(filtered, block, report_before=cut) == hits(plain, block, report_before=cut)
