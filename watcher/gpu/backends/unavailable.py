"""Stands in for a backend when `auto` found no way to read GPUs the Pod evidently has.

Every poll answers with the reason, so the GPU monitor runs anyway and says so where
people look: a warning finding (once), `/status` (`monitors.gpu`), the poll-failure
counter and `up()` false on `/metrics`. It reads nothing and costs nothing.
"""

from typing import Any

from watcher.gpu.model import Snapshot, ToolFailure, ToolProblem

SOURCE = "none"


class Unavailable:
    name = SOURCE

    def __init__(self, why: str) -> None:
        self.why = why

    async def poll(self) -> Snapshot:
        return Snapshot(SOURCE, failures=(ToolFailure(ToolProblem.NO_BACKEND, self.why),))

    async def close(self) -> None:
        """Holds nothing."""

    def status(self) -> dict[str, Any]:
        return {"problem": self.why}
