"""The configured globs: which paths they match and which directories to watch for them.

One engine answers both questions, so a file found by expanding a glob at start and a
file that shows up later under the same glob are judged alike. A pattern is split into
path components; each is matched whole:

- ``*`` any run of characters, ``?`` one, ``[abc]`` / ``[a-z]`` / ``[!a-z]`` one of a set
  (never ``/``); dot-files are matched like any other name;
- ``**`` alone as a component: any number of directories (zero included), and as the last
  component any file below; ``**`` inside a component (``**.log``) is just ``*``, as in
  Python's glob and bash.
"""

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

_MAGIC = re.compile(r"[*?\[]")
MAX_PATTERN = 4096
RECURSIVE = "**"


class GlobError(ValueError):
    """A pattern that can never match as meant (a reversed range, a NUL byte...)."""


def escape(path: str) -> str:
    """A glob that matches ``path`` itself: each `*`, `?` and `[` in a set of its own."""
    return _MAGIC.sub(lambda found: f"[{found.group()}]", path)


@dataclass(frozen=True, slots=True)
class WatchRoot:
    """A directory to watch with inotify, and whether its subdirectories matter too."""

    path: str
    recursive: bool


def check_glob(pattern: str) -> None:
    """Raise GlobError if ``pattern`` is not a usable glob."""
    if not pattern:
        raise GlobError("an empty glob")
    if "\0" in pattern:
        raise GlobError("a glob cannot contain a NUL byte")
    if len(pattern) > MAX_PATTERN:
        raise GlobError(f"a glob of {len(pattern)} characters; at most {MAX_PATTERN}")
    _Pattern(os.path.abspath(os.path.expanduser(pattern)))


class _Pattern:
    """One absolute pattern, as a list of components: literal names, `RECURSIVE`, or
    compiled regexes for one name."""

    def __init__(self, pattern: str) -> None:
        self.text = pattern
        self.parts: list[str | re.Pattern[str]] = [
            _component(part) for part in pattern.split(os.sep)[1:] if part
        ]

    def matches(self, path: str) -> bool:
        names = [name for name in path.split(os.sep)[1:] if name]
        return _match(self.parts, 0, names, 0, {})

    def expand(self) -> Iterator[str]:
        """Existing paths that match, directories excluded."""
        for path in self._walk(os.sep, 0, frozenset()):
            if not os.path.isdir(path):
                yield path

    def _walk(self, base: str, index: int, seen: frozenset[tuple[int, int]]) -> Iterator[str]:
        if index == len(self.parts):
            yield base
            return
        part = self.parts[index]
        if part == RECURSIVE:
            yield from self._walk(base, index + 1, seen)
            last = index + 1 == len(self.parts)
            for entry, identity in _entries(base):
                if identity is not None and identity not in seen:
                    yield from self._walk(entry, index, seen | {identity})
                elif identity is None and last:
                    yield entry
            return
        if isinstance(part, str):
            child = os.path.join(base, part)
            if os.path.lexists(child):
                yield from self._walk(child, index + 1, seen)
            return
        for entry, _ in _entries(base, part):
            yield from self._walk(entry, index + 1, seen)


def _entries(
    directory: str, name: re.Pattern[str] | None = None
) -> Iterator[tuple[str, tuple[int, int] | None]]:
    """Entries of ``directory`` (whose name matches), sorted, each with its identity if
    it is a directory (symlinks followed)."""
    try:
        with os.scandir(directory) as scan:
            entries = sorted(
                (e for e in scan if name is None or name.fullmatch(e.name)), key=lambda e: e.name
            )
    except OSError:
        return
    for entry in entries:
        identity = None
        try:
            if entry.is_dir():
                st = entry.stat()
                identity = (st.st_dev, st.st_ino)
        except OSError:
            continue
        yield entry.path, identity


def _match(
    parts: Sequence[str | re.Pattern[str]],
    i: int,
    names: Sequence[str],
    j: int,
    memo: dict[tuple[int, int], bool],
) -> bool:
    key = (i, j)
    if key in memo:
        return memo[key]
    if i == len(parts):
        found = j == len(names)
    elif parts[i] == RECURSIVE:
        found = any(_match(parts, i + 1, names, k, memo) for k in range(j, len(names) + 1))
    elif j == len(names):
        found = False
    else:
        part = parts[i]
        same = part == names[j] if isinstance(part, str) else part.fullmatch(names[j]) is not None
        found = same and _match(parts, i + 1, names, j + 1, memo)
    memo[key] = found
    return found


def _component(part: str) -> str | re.Pattern[str]:
    """A literal name, `RECURSIVE`, or the regex of one name's pattern."""
    if part == RECURSIVE:
        return RECURSIVE
    if not _MAGIC.search(part):
        return part
    out: list[str] = []
    i = 0
    while i < len(part):
        char = part[i]
        if char == "*":
            while i < len(part) and part[i] == "*":
                i += 1
            out.append(".*")
            continue
        if char == "?":
            out.append(".")
        elif char == "[" and (close := _set_end(part, i)) > 0:
            out.append(_set(part[i + 1 : close]))
            i = close
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out), re.DOTALL)


def _set_end(part: str, start: int) -> int:
    """Index of the `]` closing the set opened at ``start``, or -1 (then `[` is literal)."""
    j = start + 1
    if j < len(part) and part[j] == "!":
        j += 1
    if j < len(part) and part[j] == "]":
        j += 1
    return part.find("]", j)


def _set(body: str) -> str:
    negate = body.startswith("!")
    body = body[1:] if negate else body
    items = []
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            low, high = body[i], body[i + 2]
            if low > high:
                raise GlobError(f"[{body}]: bad character range {low}-{high}")
            items.append(f"{re.escape(low)}-{re.escape(high)}")
            i += 3
        else:
            items.append(re.escape(body[i]))
            i += 1
    return ("[^" if negate else "[") + "".join(items) + "]"


class GlobSet:
    """Absolute glob patterns (see the module docstring)."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(os.path.abspath(os.path.expanduser(p)) for p in patterns)
        self._compiled = [_Pattern(p) for p in self.patterns]

    def matches(self, path: str) -> bool:
        return any(pattern.matches(path) for pattern in self._compiled)

    def patterns_matching(self, path: str) -> list[str]:
        return [pattern.text for pattern in self._compiled if pattern.matches(path)]

    def expand(self) -> list[str]:
        """Paths that match now, directories excluded, in a stable order. Not only
        regular files: the caller says why it cannot follow a FIFO or a device."""
        found: dict[str, None] = {}
        for pattern in self._compiled:
            for path in pattern.expand():
                found[path] = None
        return list(found)

    def watch_roots(self) -> list[WatchRoot]:
        """Where to listen: each pattern's fixed directory, or its nearest existing parent.

        A missing directory is watched through its parent (without recursion, so a
        missing `/data/run/logs` never means watching all of `/`); once it appears the
        caller asks again and gets the real one.
        """
        roots: dict[str, bool] = {}
        for pattern in self.patterns:
            fixed, recursive = _fixed_dir(pattern)
            directory = fixed
            while not os.path.isdir(directory) and directory != os.path.dirname(directory):
                directory = os.path.dirname(directory)
                recursive = False
            roots[directory] = roots.get(directory, False) or recursive
        return [WatchRoot(path, recursive) for path, recursive in sorted(roots.items())]


def _fixed_dir(pattern: str) -> tuple[str, bool]:
    """The directory part before any wildcard, and whether wildcards span directories."""
    parts = pattern.split(os.sep)
    for index, part in enumerate(parts):
        if _MAGIC.search(part):
            fixed = os.sep.join(parts[:index]) or os.sep
            return fixed, index < len(parts) - 1 or part == RECURSIVE
    return os.path.dirname(pattern) or os.sep, False
