"""Count events per key within a sliding time window, each place in a file once."""

from collections import deque
from collections.abc import Hashable


class SlidingCounter:
    """How many times each key was seen in the last ``window`` seconds.

    A sighting may name where it was seen (a file and a byte offset): the same place seen
    again (a line read twice after a restart of the watcher, or a rotation it could not
    tell apart) does not count again.
    """

    def __init__(self) -> None:
        self._seen: dict[str, deque[tuple[float, int, Hashable]]] = {}

    def add(
        self, key: str, at: float, count: int, window: float, where: Hashable | None = None
    ) -> int:
        """Record ``count`` sightings at ``at``; return the total within the window."""
        seen = self._seen.setdefault(key, deque())
        while seen and at - seen[0][0] >= window:
            seen.popleft()
        if where is None or all(place != where for _, _, place in seen):
            seen.append((at, count, where))
        return sum(n for _, n, _ in seen)

    def reset(self, key: str) -> None:
        self._seen.pop(key, None)
