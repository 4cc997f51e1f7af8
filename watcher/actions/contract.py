"""What the actions are given and what they give back: their settings, the outcome of a
decision, and the hooks other packages fill in (the gang's early write, the Events)."""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from watcher.types import Finding


@dataclass(frozen=True)
class ActionConfig:
    restart_exit_code: int
    termination_log: Path | None
    timeout: float
    """Deadline for all last words together, from the decision to the exit."""
    stop_grace: float = 30.0
    """Seconds a workload stopped by a `fail` gets between SIGTERM and SIGKILL."""


@dataclass(frozen=True)
class Outcome:
    """What carrying out a decision led to."""

    exit_code: int | None = None
    """End the process with this code."""
    setback: Finding | None = None
    """Something the policy must decide on: the eviction was refused, the restart was not
    recorded and so not taken."""


class GangHook(Protocol):
    """The gang's early write (`watcher.gang`), for a restart this Pod decided."""

    key: str

    def next_generation(self) -> int | None:
        """The generation this restart moves the gang to."""

    def early_annotations(self) -> Mapping[str, str]:
        """What the last words' patch of the own Pod carries too (JobSet: the attempt)."""

    async def early_write(self) -> None:
        """Any further write (Lease: the bump), each request under the API timeout."""


EventsDrain = Callable[[float], Awaitable[None]]
"""Wait, at most that many seconds, until the Events of earlier decisions are posted."""
