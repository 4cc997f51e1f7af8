"""The built-in rules on the corpus of real logs (tests/corpus_real): its shape, the
recall and false alarms they reach, and the figures `pod-watcher rules` ships.

`python -m tests.rules.real_report` prints the table these thresholds are read from.
"""

from collections import Counter

import pytest

from tests.rules.real_corpus import Excerpt, Verdict, judge, load
from tests.rules.real_report import stats_file, stats_text, tallies
from watcher.rules.corpus_stats import real_logs
from watcher.rules.packs import effective_rules

RULES = effective_rules(["all"], [], [])
FAMILIES = {
    "torchrun", "pytorch-ddp", "pytorch-fsdp", "dataloader", "nccl", "gloo", "cuda", "cudnn",
    "cublas", "nvidia-driver", "xid", "jax", "tpu", "torch-xla", "tensorflow", "horovod", "mpi",
    "deepspeed", "megatron", "nemo", "lightning", "accelerate", "transformers-trainer",
    "ray-train", "vllm", "sglang", "slurm", "oom-killer", "disk-full", "nfs-lustre",
    "object-store",
}  # fmt: skip
"""Every family issue 13 names."""


@pytest.fixture(scope="module")
def verdicts() -> list[Verdict]:
    return list(judge(RULES, load()))


def test_the_corpus_is_big_varied_and_spans_every_family() -> None:
    excerpts = load()
    labels = Counter(e.label for e in excerpts)
    assert labels["fatal"] >= 300
    assert labels["benign"] >= 150
    assert len({e.source for e in excerpts}) >= 150
    by_family = Counter((e.family, e.label) for e in excerpts)
    assert all(by_family[family, "fatal"] for family in FAMILIES), FAMILIES
    assert all(by_family[family, "benign"] for family in FAMILIES - {"oom-killer"})
    assert {e.part for e in excerpts} == {"tune", "check"}


def test_no_repository_is_on_both_sides_of_the_split() -> None:
    parts: dict[str, set[str]] = {}
    for excerpt in load():
        parts.setdefault(excerpt.repository, set()).add(excerpt.part)
    assert all(len(sides) == 1 for sides in parts.values())


def unambiguous(verdicts: list[Verdict]) -> list[Verdict]:
    return [v for v in verdicts if not v.excerpt.ambiguous]


def test_no_benign_excerpt_raises_a_fatal_finding(verdicts: list[Verdict]) -> None:
    alarms = [v.excerpt.id for v in verdicts if v.excerpt.label == "benign" and v.alarm]
    assert alarms == []


@pytest.mark.parametrize(("part", "floor"), [("both", 0.98), ("tune", 0.98), ("check", 0.95)])
def test_recall_on_unambiguous_fatal_excerpts(
    verdicts: list[Verdict], part: str, floor: float
) -> None:
    tally = tallies(unambiguous(verdicts))["all", part]
    missed = [
        v.excerpt.id
        for v in unambiguous(verdicts)
        if v.excerpt.label == "fatal" and not v.alarm and part in (v.excerpt.part, "both")
    ]
    assert tally.recall >= floor, missed


def test_ambiguous_excerpts_are_fatal_and_say_why() -> None:
    ambiguous: list[Excerpt] = [e for e in load() if e.ambiguous]
    assert ambiguous
    assert all(e.label == "fatal" and len(e.note) > 40 for e in ambiguous)


def test_the_shipped_figures_are_those_of_the_corpus(verdicts: list[Verdict]) -> None:
    shipped = stats_file().read_text("utf-8")
    assert shipped == stats_text(RULES, verdicts), (
        "watcher/rules/corpus_stats.json is stale: run "
        "`python -m tests.rules.real_report --write-stats`"
    )


def test_every_built_in_rule_shows_its_figures(verdicts: list[Verdict]) -> None:
    fatal = [v for v in verdicts if v.excerpt.label == "fatal"]
    caught = Counter(reason for v in fatal for reason in set(v.fatal))
    first = Counter(v.fatal[0] for v in fatal if v.fatal)
    for rule in RULES:
        figures = real_logs(rule)
        assert figures is not None, rule.reason
        assert (figures.fatal_excerpts, figures.benign_checked) == (
            len(fatal),
            len(verdicts) - len(fatal),
        )
        if rule.severity.value == "fatal":
            assert (figures.fatal_matched, figures.fatal_first) == (
                caught[rule.reason],
                first[rule.reason],
            )
            assert figures.benign_matched == 0
    mine = effective_rules(["cuda"], [], [])[0].model_copy(update={"pack": None})
    assert real_logs(mine) is None  # a rule of the user's has no figures
