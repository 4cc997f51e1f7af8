"""What the gang monitor asks of a coordination (JobSet's or the standalone Lease's)."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from watcher.kube.watch import Obj, ObjectWatch


@dataclass(frozen=True)
class Edge:
    """What a new version of the shared object means for this Pod."""

    kind: Literal["restart", "lifted"]
    generation: int
    """restart: the generation the gang moves to; lifted: the one every Pod reached."""
    why: str


class Coordinator(Protocol):
    key: str
    """``jobset/<ns>/<name>`` or ``lease/<ns>/<name>``: the gang, in the ledger."""
    watch: ObjectWatch
    own: int | None
    """This Pod's generation (attempt) once it joined."""

    async def join(self, obj: Obj | None) -> dict[str, Any] | None:
        """First sight: write this Pod's arrival; the Pod as the write's answer, or None
        when nothing was written (a bypassed JobSet). ApiError when refused."""

    def edge(self, obj: Obj | None) -> Edge | None:
        """A restart to follow, the barrier lifted, or nothing."""

    def next_generation(self) -> int | None:
        """The generation a restart decided by this Pod moves the gang to."""

    def early_annotations(self) -> Mapping[str, str]:
        """Annotations the last words' patch of the own Pod carries (JobSet: the attempt)."""

    async def early_write(self) -> None:
        """The early write beyond the annotations (Lease: the bump); never raises."""

    async def background(self) -> None:
        """Work beside the watch (the Lease's aggregator at index 0); never ends by itself."""
