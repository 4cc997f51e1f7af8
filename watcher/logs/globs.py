"""The configured globs: which paths they match and which directories to watch for them."""

import glob
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

_MAGIC = re.compile(r"[*?\[]")


@dataclass(frozen=True, slots=True)
class WatchRoot:
    """A directory to watch with inotify, and whether its subdirectories matter too."""

    path: str
    recursive: bool


class GlobSet:
    """Absolute glob patterns; `**` matches any number of directories."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(os.path.abspath(os.path.expanduser(p)) for p in patterns)
        self._regexes = [_to_regex(p) for p in self.patterns]

    def matches(self, path: str) -> bool:
        return any(regex.match(path) for regex in self._regexes)

    def expand(self) -> list[str]:
        """Regular files that match now, in a stable order."""
        found: dict[str, None] = {}
        for pattern in self.patterns:
            for path in sorted(glob.glob(pattern, recursive=True, include_hidden=True)):
                if os.path.isfile(path):
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
            return fixed, index < len(parts) - 1 or "**" in part
    return os.path.dirname(pattern) or os.sep, False


def _to_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (close := pattern.find("]", i + 2)) > 0:
            body = pattern[i + 1 : close]
            body = "^" + body[1:] if body.startswith("!") else body
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = close + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")
