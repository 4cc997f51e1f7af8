"""'Did you mean ...?' for rule reasons and pack names typed by hand.

Rule reasons are CamelCase words, and people shorten them: ``CudaOOM`` for
``CudaOutOfMemory``, ``cuda_out_of_memory`` for the same. A name is close to a known one
when it spells the same words (case and separators aside) or replaces a run of them by
their initials; otherwise when it is a typo or a look-alike, as the configuration's own
hints judge (`watcher.config.hints.similar`).
"""

import re
from collections.abc import Iterable

from watcher.config.hints import similar

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z][a-z0-9]*|[a-z0-9]+")


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _abbreviations(name: str) -> set[str]:
    """The name with one run of two or more of its words replaced by their initials."""
    words = _WORD.findall(name)
    found = set()
    for start in range(len(words)):
        for stop in range(start + 2, len(words) + 1):
            initials = "".join(word[0] for word in words[start:stop])
            found.add(_squash("".join([*words[:start], initials, *words[stop:]])))
    return found


def close_names(name: str, candidates: Iterable[str]) -> list[str]:
    """The candidates ``name`` was most likely meant to be, best first (at most three)."""
    pool = sorted(set(candidates))
    wanted = _squash(name)
    same_words = [c for c in pool if _squash(c) == wanted or wanted in _abbreviations(c)]
    if same_words:
        return same_words[:3]
    found = similar(name, pool)
    return [] if found is None else [found]


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean X?)`` or ``""`` when nothing is close."""
    close = close_names(name, candidates)
    if not close:
        return ""
    return f" (did you mean {' or '.join(close)}?)"
