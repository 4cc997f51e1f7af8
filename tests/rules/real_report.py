"""Print how the rules fare on the real-log corpus: `python -m tests.rules.real_report`.

Per family: caught fatal excerpts and false alarms on benign ones, for the tuning part,
the check part and both; then per rule, how many fatal excerpts it fires on (first
finding or not) and how many benign ones. ``--rules naive`` scores the one-line baseline
``(?i)error|fail|fatal|exception|traceback`` instead of the built-in packs, ``--misses``
lists the fatal excerpts nothing caught and the benign ones something did, ``--reasons``
the caught ones whose first finding is not the expected reason. ``--file fresh2.yaml``
scores the excerpts of one file of the corpus only (a held-out batch's own figures).
``--write-stats`` regenerates `watcher/rules/corpus_stats.json`, which `pod-watcher rules`
shows, always from the whole corpus.
"""

import argparse
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from tests.rules.real_corpus import Verdict, judge, load
from watcher.rules import corpus_stats
from watcher.rules.packs import effective_rules
from watcher.rules.rule import Rule

NAIVE = Rule(reason="Naive", pattern="(?i)error|fail|fatal|exception|traceback")


@dataclass
class Tally:
    fatal: int = 0
    caught: int = 0
    benign: int = 0
    alarms: int = 0

    def add(self, verdict: Verdict) -> None:
        if verdict.excerpt.label == "fatal":
            self.fatal += 1
            self.caught += verdict.alarm
        else:
            self.benign += 1
            self.alarms += verdict.alarm

    @property
    def recall(self) -> float:
        return self.caught / self.fatal if self.fatal else 1.0

    def cell(self) -> str:
        recall = f"{self.caught}/{self.fatal}" if self.fatal else "-"
        alarms = f"{self.alarms}/{self.benign}" if self.benign else "-"
        return f"{recall:>14} {alarms:>6}"


def tallies(verdicts: Sequence[Verdict]) -> dict[tuple[str, str], Tally]:
    """(family or "all", part or "both") -> tally."""
    table: dict[tuple[str, str], Tally] = defaultdict(Tally)
    for verdict in verdicts:
        excerpt = verdict.excerpt
        for family in (excerpt.family, "all"):
            for part in (excerpt.part, "both"):
                table[family, part].add(verdict)
    return table


def family_table(verdicts: Sequence[Verdict]) -> list[str]:
    table = tallies(verdicts)
    families = [*sorted({f for f, _ in table if f != "all"}), "all"]
    head = f"{'family':<22}" + "".join(f" {p + ' caught':>14} {'alarms':>6}" for p in PARTS)
    lines = [head]
    for family in families:
        cells = "".join(f" {table[family, p].cell()}" for p in PARTS)
        lines.append(f"{family:<22}{cells}")
    clear = tallies([v for v in verdicts if not v.excerpt.ambiguous])
    for part in PARTS:
        tally, sure = table["all", part], clear["all", part]
        lines.append(
            f"{part}: recall {tally.recall:.1%} ({tally.caught}/{tally.fatal}), "
            f"unambiguous {sure.recall:.1%} ({sure.caught}/{sure.fatal}), "
            f"false alarms {tally.alarms}/{tally.benign}"
        )
    return lines


PARTS = ("tune", "check", "both")


def rule_table(verdicts: Sequence[Verdict]) -> list[str]:
    fired: Counter[str] = Counter()
    first: Counter[str] = Counter()
    alarms: Counter[str] = Counter()
    for verdict in verdicts:
        reasons = set(verdict.fatal)
        if verdict.excerpt.label == "fatal":
            fired.update(reasons)
            first.update(verdict.fatal[:1])
        else:
            alarms.update(reasons)
    lines = [f"{'rule':<32}{'fatal hits':>11}{'first':>7}{'benign hits':>12}"]
    for reason in sorted(set(fired) | set(alarms)):
        lines.append(f"{reason:<32}{fired[reason]:>11}{first[reason]:>7}{alarms[reason]:>12}")
    return lines


def misses(verdicts: Sequence[Verdict], part: str) -> list[str]:
    wrong = [v for v in verdicts if not v.correct and part in (v.excerpt.part, "both")]
    return [
        f"{v.excerpt.part:<6}{v.excerpt.label:<7}{v.excerpt.family:<21}{v.excerpt.id}"
        f"  expected {v.excerpt.reason or '-'}, got {', '.join(v.fatal) or '-'}"
        for v in wrong
    ]


def reasons(verdicts: Sequence[Verdict]) -> list[str]:
    caught = [v for v in verdicts if v.excerpt.label == "fatal" and v.alarm]
    wrong = [v for v in caught if v.fatal[0] != v.excerpt.reason]
    lines = [f"first finding is the expected reason: {len(caught) - len(wrong)}/{len(caught)}"]
    lines += [
        f"{v.excerpt.part:<6}{v.excerpt.id:<40} {v.excerpt.reason} -> {v.fatal[0]}" for v in wrong
    ]
    return lines


def stats(rules: Sequence[Rule], verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """What `watcher/rules/corpus_stats.json` holds: for every rule, the excerpts it
    matched (fatal, first fatal finding, benign)."""
    matched: dict[str, Counter[str]] = defaultdict(Counter)
    for verdict in verdicts:
        label = verdict.excerpt.label
        for reason in set(verdict.fatal) | set(verdict.warnings):
            matched[reason][label] += 1
        if label == "fatal" and verdict.fatal:
            matched[verdict.fatal[0]]["first"] += 1
    labels = Counter(v.excerpt.label for v in verdicts)
    return {
        "about": (
            "Generated by `python -m tests.rules.real_report --write-stats` from "
            "tests/corpus_real with every built-in pack on; do not edit."
        ),
        "fatal_excerpts": labels["fatal"],
        "benign_excerpts": labels["benign"],
        "rules": {
            rule.reason: {
                "fatal_matched": matched[rule.reason]["fatal"],
                "fatal_first": matched[rule.reason]["first"],
                "benign_matched": matched[rule.reason]["benign"],
            }
            for rule in sorted(rules, key=lambda r: r.reason)
        },
    }


def stats_text(rules: Sequence[Rule], verdicts: Sequence[Verdict]) -> str:
    return json.dumps(stats(rules, verdicts), indent=1) + "\n"


def stats_file() -> Path:
    return Path(str(resources.files("watcher.rules") / corpus_stats.FILE))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rules", choices=("packs", "naive"), default="packs")
    parser.add_argument("--misses", choices=("tune", "check", "both"))
    parser.add_argument("--reasons", action="store_true")
    parser.add_argument("--file", help="score only the excerpts of this corpus file")
    parser.add_argument("--write-stats", action="store_true")
    args = parser.parse_args(argv)
    rules = (NAIVE,) if args.rules == "naive" else effective_rules(["all"], [], [])
    excerpts = load()
    if args.file:
        if args.write_stats:
            parser.error("--write-stats is for the whole corpus, not --file")
        excerpts = tuple(e for e in excerpts if e.file == args.file)
        if not excerpts:
            parser.error(f"no excerpt comes from {args.file}")
    verdicts = list(judge(rules, excerpts))
    if args.write_stats:
        if args.rules != "packs":
            parser.error("--write-stats is for the built-in packs")
        stats_file().write_text(stats_text(rules, verdicts), "utf-8")
    print("\n".join(family_table(verdicts)))
    print()
    print("\n".join(rule_table(verdicts)))
    if args.misses:
        print()
        print("\n".join(misses(verdicts, args.misses)))
    if args.reasons:
        print()
        print("\n".join(reasons(verdicts)))


if __name__ == "__main__":
    main()
