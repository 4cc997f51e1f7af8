"""The corpus of real log excerpts in tests/corpus_real, its split, and how it is scored.

Each excerpt is written to a file and replayed with `watcher.replay.Replayer`, the same
reading path (chunks, line assembler, matcher, detectors) the live watcher uses. An
excerpt counts as *caught* when at least one fatal finding comes out of it, and a benign
excerpt as a *false alarm* when one does. The expected reason is recorded in the data and
reported, but recall does not depend on it: a fatal log caught under another name still
restarts the Pod.

The corpus is split by source repository, so that no repository has excerpts on both
sides: `part()` puts a repository in the check part when the first four bytes of the
SHA-256 of its lower-cased ``owner/name`` (the host name for sources outside GitHub),
read as a big-endian number, are divisible by 3. Rules are tuned by looking at misses in
the tuning part only; the check part says whether they generalise.
"""

import hashlib
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from watcher.config.settings import DEFAULT_ACTIONS, WatcherSettings
from watcher.replay import Replayer
from watcher.rules.rule import Rule
from watcher.types import FaultClass

FOLDER = Path(__file__).resolve().parent.parent / "corpus_real"
Label = Literal["fatal", "benign"]
Part = Literal["tune", "check"]
_GITHUB = re.compile(r"^https://github\.com/([^/]+/[^/]+)/")
_KEYS = {"id", "source", "family", "label", "reason", "fault_class", "note", "ambiguous", "text"}


@dataclass(frozen=True)
class Excerpt:
    """One labelled excerpt, as the program printed it."""

    id: str
    source: str
    family: str
    label: Label
    text: str
    reason: str | None = None
    fault_class: FaultClass | None = None
    note: str = ""
    ambiguous: bool = False
    file: str = field(default="", compare=False)

    @property
    def repository(self) -> str:
        return repository(self.source)

    @property
    def part(self) -> Part:
        return part(self.repository)


def repository(source: str) -> str:
    """``owner/name`` of a GitHub source, lower-cased; the host name otherwise."""
    match = _GITHUB.match(source)
    if match:
        return match.group(1).lower()
    return source.split("/")[2].lower()


def part(repo: str) -> Part:
    """The fixed, recorded split: a hash of the repository, never of the excerpt."""
    digest = hashlib.sha256(repo.encode()).digest()
    return "check" if int.from_bytes(digest[:4], "big") % 3 == 0 else "tune"


def _excerpt(raw: dict[str, Any], file: str) -> Excerpt:
    unknown = set(raw) - _KEYS
    if unknown:
        raise ValueError(f"{file}: {raw.get('id')}: unknown keys {sorted(unknown)}")
    fatal = raw["label"] == "fatal"
    if raw["label"] not in ("fatal", "benign") or fatal != ("reason" in raw):
        raise ValueError(f"{file}: {raw['id']}: a fatal excerpt needs a reason, a benign none")
    return Excerpt(
        id=raw["id"],
        source=raw["source"],
        family=raw["family"],
        label=raw["label"],
        text=raw["text"],
        reason=raw.get("reason"),
        fault_class=FaultClass(raw["fault_class"]) if fatal else None,
        note=raw.get("note", ""),
        ambiguous=bool(raw.get("ambiguous", False)),
        file=file,
    )


@cache
def load() -> tuple[Excerpt, ...]:
    """Every excerpt of every YAML file of the corpus, checked for shape and unique ids."""
    excerpts = []
    for path in sorted(FOLDER.glob("*.yaml")):
        for raw in yaml.safe_load(path.read_text("utf-8")) or []:
            excerpts.append(_excerpt(raw, path.name))
    _unique("ids", [e.id for e in excerpts])
    _unique("excerpts (same source, same text)", [f"{e.source} {e.text}" for e in excerpts])
    return tuple(excerpts)


def _unique(what: str, keys: list[str]) -> None:
    counts = Counter(key.strip() for key in keys)
    duplicated = sorted(key[:80] for key, n in counts.items() if n > 1)
    if duplicated:
        raise ValueError(f"duplicate {what}: {duplicated}")


@dataclass(frozen=True)
class Verdict:
    """What the rules made of one excerpt."""

    excerpt: Excerpt
    fatal: tuple[str, ...]
    """Reasons of the fatal findings, in line order (the first is what the watcher reports)."""
    warnings: tuple[str, ...]

    @property
    def alarm(self) -> bool:
        return bool(self.fatal)

    @property
    def correct(self) -> bool:
        return self.alarm == (self.excerpt.label == "fatal")


def judge(rules: Sequence[Rule], excerpts: Iterable[Excerpt]) -> Iterator[Verdict]:
    """Replay each excerpt with ``rules`` through the watcher's own reading path."""
    defaults = WatcherSettings.model_fields
    replayer = Replayer(
        tuple(rules),
        DEFAULT_ACTIONS,
        max_line=defaults["max_line_bytes"].default,
        chunk=defaults["read_chunk_bytes"].default,
    )
    with tempfile.TemporaryDirectory(prefix="corpus-real-") as folder:
        for excerpt in excerpts:
            path = Path(folder) / f"{excerpt.id}.log"
            path.write_text(excerpt.text, "utf-8")
            hits = list(replayer.replay(str(path)))
            yield Verdict(
                excerpt,
                fatal=tuple(h.rule.reason for h in hits if h.fatal),
                warnings=tuple(h.rule.reason for h in hits if not h.fatal),
            )
