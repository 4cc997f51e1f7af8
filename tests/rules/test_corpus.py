"""Recall and false alarms of the built-in packs on the labelled corpus in tests/corpus.

Layout: ``tests/corpus/<pack>/fatal/<Reason>--<what>.log`` must raise a fatal finding,
and the first fatal finding in the file (by line) must have ``<Reason>``.
``tests/corpus/<pack>/benign/<what>.log`` must raise no fatal finding at all. Every
excerpt is scanned with all built-in packs on, as the watcher runs by default, detectors
included.
"""

from pathlib import Path

import pytest

from watcher.logs.lines import Block
from watcher.rules.matcher import RuleMatcher
from watcher.rules.packs import available_packs, effective_rules
from watcher.types import Severity

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
MATCHER = RuleMatcher(effective_rules(["all"], [], []))
FATAL = sorted(CORPUS.glob("*/fatal/*.log"))
BENIGN = sorted(CORPUS.glob("*/benign/*.log"))


def first_fatal(path: Path) -> str | None:
    data = path.read_bytes()
    data = data if data.endswith(b"\n") else data + b"\n"
    for hit in MATCHER.scan_block(Block(data, len(data), 0)):
        if hit.rule.severity is Severity.FATAL:
            return hit.rule.reason
    return None


def label(path: Path) -> str:
    return f"{path.parent.parent.name}/{path.parent.name}/{path.name}"


def test_every_pack_has_fatal_and_benign_excerpts() -> None:
    for pack in available_packs():
        assert list((CORPUS / pack / "fatal").glob("*.log")), f"no fatal excerpts for {pack}"
        assert list((CORPUS / pack / "benign").glob("*.log")), f"no benign excerpts for {pack}"


def test_recall_is_total() -> None:
    missed = {label(p): first_fatal(p) for p in FATAL}
    wrong = {name: got for name, got in missed.items() if got != name.split("/")[-1].split("--")[0]}
    recall = 1 - len(wrong) / len(FATAL)
    assert not wrong, f"recall {recall:.1%} on {len(FATAL)} excerpts; expected != got: {wrong}"


def test_no_false_alarms() -> None:
    alarms = {label(p): first_fatal(p) for p in BENIGN}
    alarms = {name: reason for name, reason in alarms.items() if reason is not None}
    assert not alarms, f"{len(alarms)} false alarms on {len(BENIGN)} benign excerpts: {alarms}"


@pytest.mark.parametrize("path", FATAL, ids=label)
def test_fatal_excerpt(path: Path) -> None:
    assert first_fatal(path) == path.name.split("--")[0]


@pytest.mark.parametrize("path", BENIGN, ids=label)
def test_benign_excerpt(path: Path) -> None:
    assert first_fatal(path) is None
