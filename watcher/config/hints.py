"""'Did you mean': which known name a misspelt one stands for.

A *typo* of a known name is one slip away from it (a letter added, dropped, changed, or
two neighbours swapped), or two slips in a name of 10 characters or more. Anything
farther is an unrelated name: `WATCHER_NODE_NAME` is two slips from `WATCHER_POD_NAME`
but a different variable that someone else may set, and Kubernetes service links
(`WATCHER_SERVICE_HOST`, `WATCHER_PORT_9188_TCP` for a Service named `watcher`) are
nobody's typo. Names compare without the `WATCHER_` prefix, which they all share.
"""

import difflib
import types
from collections.abc import Iterable, Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

LONG = 10
"""From this length on, a name may carry two slips and still be a typo."""


def slips(a: str, b: str) -> int:
    """Edits from ``a`` to ``b``: insert, delete, substitute, swap two neighbours
    (optimal string alignment distance)."""
    rows = [list(range(len(b) + 1))]
    for i, char_a in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, char_b in enumerate(b, 1):
            row[j] = min(
                rows[-1][j] + 1,
                row[j - 1] + 1,
                rows[-1][j - 1] + (char_a != char_b),
            )
            if i > 1 and j > 1 and char_a == b[j - 2] and a[i - 2] == char_b:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def typo_of(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` is a typo of, if any (the nearest; ties: the first).
    Case does not count as a slip."""
    best: tuple[int, str] | None = None
    for candidate in known:
        if candidate == name:
            return None
        distance = slips(name.casefold(), candidate.casefold())
        allowed = 2 if len(candidate) >= LONG else 1
        if distance <= allowed and (best is None or distance < best[0]):
            best = (distance, candidate)
    return None if best is None else best[1]


def similar(name: str, known: Iterable[str]) -> str | None:
    """A known name to suggest for an unknown key: a typo, else the closest look-alike."""
    choices = list(known)
    found = typo_of(name, choices)
    if found is not None:
        return found
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.7)
    return close[0] if close else None


def did_you_mean(suggestion: str | None) -> str:
    return f" (did you mean {suggestion}?)" if suggestion else ""


def keys_at(model: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The keys the mapping at ``loc`` inside ``model`` accepts (a field's alias, which
    is what users write, else its name); none when ``loc`` is not a model."""
    current: Any = model
    for part in loc:
        current = _inner(current, part)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [field.alias or name for name, field in current.model_fields.items()]
    return []


def _inner(annotation: Any, part: int | str) -> Any:
    """The type found under ``part`` (a key or an index) of a value of ``annotation``."""
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, field in annotation.model_fields.items():
            if part in (name, field.alias):
                return field.annotation
        return None
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (tuple, list) and isinstance(part, int) and args:
        return args[0]
    if origin is dict and isinstance(part, str) and len(args) == 2:
        return args[1]
    return None


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    if get_origin(annotation) in (Union, types.UnionType):
        inner = [arg for arg in get_args(annotation) if arg is not type(None)]
        return inner[0] if len(inner) == 1 else annotation
    return annotation
