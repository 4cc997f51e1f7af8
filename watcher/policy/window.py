"""Count events per key within a sliding time window."""

from collections import deque


class SlidingCounter:
    """How many times each key was seen in the last ``window`` seconds."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[tuple[float, int]]] = {}

    def add(self, key: str, at: float, count: int, window: float) -> int:
        """Record ``count`` sightings at ``at``; return the total within the window."""
        seen = self._seen.setdefault(key, deque())
        seen.append((at, count))
        while seen and at - seen[0][0] >= window:
            seen.popleft()
        return sum(n for _, n in seen)

    def reset(self, key: str) -> None:
        self._seen.pop(key, None)
