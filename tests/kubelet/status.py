"""One container's status in the kubelet model, and its API shape."""

from dataclasses import dataclass
from typing import Any

RESTARTING = "RestartingAllContainers"
REMOVED = "The container is removed because RestartAllContainers in place"
TERMINAL = ("Succeeded", "Failed")


@dataclass
class ContainerStatus:
    name: str
    state: str = "waiting"
    """waiting, running or terminated."""
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    restart_count: int = 0
    last_state: dict[str, Any] | None = None
    started: bool = False
    """A sidecar's startupProbe passed (other containers: it runs)."""
    init_done: bool = False
    """This init container let the next one start (completed, or started as a sidecar)."""
    ever_started: bool = False
    crashes: int = 0
    """Restarts of this container alone in a row, for the crash-loop back-off."""
    marker: str = ""

    def running(self, marker: str) -> None:
        self.state, self.exit_code, self.reason, self.message = "running", None, None, None
        self.started, self.ever_started, self.marker = False, True, marker

    def terminated(self, code: int, message: str | None) -> None:
        self.state, self.exit_code = "terminated", code
        self.reason = "Completed" if code == 0 else "Error"
        self.message = message

    def restarted_alone(self) -> None:
        self.last_state = {"terminated": self._terminated()}
        self.restart_count += 1
        self.state = "waiting"

    def removed_for_restart_all(self) -> None:
        """What every container shows after a RestartAllContainers, the trigger too."""
        self.last_state = {
            "terminated": {"exitCode": 137, "reason": RESTARTING, "message": REMOVED}
        }
        self.restart_count += 1
        self.state, self.exit_code, self.reason, self.message = "waiting", None, None, None
        self.started = self.init_done = False
        self.crashes = 0

    def _terminated(self) -> dict[str, Any]:
        return {"exitCode": self.exit_code, "reason": self.reason, "message": self.message}

    def api(self) -> dict[str, Any]:
        state: dict[str, Any] = {"waiting": {}}
        if self.state == "running":
            state = {"running": {}}
        elif self.state == "terminated":
            state = {"terminated": self._terminated()}
        return {
            "name": self.name,
            "state": state,
            "lastState": self.last_state or {},
            "restartCount": self.restart_count,
            "started": self.started,
        }
