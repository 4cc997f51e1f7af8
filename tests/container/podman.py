"""Run the real pod-watcher image with podman, the way the kubelet runs the sidecar.

Every container runs with runc, the machine's ulimits and the manifests' hardening:
non-root (65532), read-only root with no tmpfs anywhere (not even /tmp), no capabilities,
no privilege escalation. Every wait has a deadline; nothing sleeps to synchronise.
"""

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.process import http_get
from tests.waiting import wait_until

IMAGE = os.environ.get("POD_WATCHER_IMAGE", "pod-watcher:dev")
UID = 65532
PODMAN = ("podman", "--storage-driver", "vfs")
RUNTIME = (
    "--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
)  # fmt: skip
HARDENED = (
    "--user", f"{UID}:{UID}", "--read-only", "--read-only-tmpfs=false", "--cap-drop=ALL",
    "--security-opt=no-new-privileges", "--memory=128m",
)  # fmt: skip
"""The manifests' securityContext and memory limit (manifests/pod.yaml)."""
READY_TIMEOUT = 30.0
"""Deadline from `podman run` to /readyz 200: container creation on vfs copies the image."""

Record = dict[str, Any]


def available() -> bool:
    return shutil.which("podman") is not None


def podman(
    *args: str, timeout: float = 60.0, check: bool = True
) -> "subprocess.CompletedProcess[str]":
    result = subprocess.run(
        [*PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args)}: exit {result.returncode}\n{result.stdout}{result.stderr}"
        )
    return result


def image_exists(image: str = IMAGE) -> bool:
    return podman("image", "exists", image, check=False).returncode == 0


def image_size(image: str = IMAGE) -> int:
    return int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout)


@dataclass(frozen=True)
class Volumes:
    """One Pod's emptyDirs on the host: logs (trainer writes), state, termination log."""

    root: Path

    @classmethod
    def create(cls, root: Path) -> "Volumes":
        volumes = cls(root)
        for directory in (volumes.logs, volumes.state):
            directory.mkdir()
        volumes.termination.touch()
        for path in (volumes.logs, volumes.state, volumes.termination):
            os.chown(path, UID, UID)
        return volumes

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def termination(self) -> Path:
        return self.root / "termination-log"

    def watcher_mounts(self) -> list[str]:
        """As in manifests/pod.yaml: logs read-only, the termination log at its default."""
        return [
            "-v", f"{self.logs}:/logs:ro",
            "-v", f"{self.state}:/state",
            "-v", f"{self.termination}:/dev/termination-log",
            "-e", "WATCHER_LOG_PATHS=/logs/*.log",
            "-e", "WATCHER_STATE_DIR=/state",
        ]  # fmt: skip

    def ledger(self, action: str | None = None) -> list[Record]:
        path = self.state / "ledger.jsonl"
        if not path.exists():
            return []
        entries = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
        return [e for e in entries if action is None or e["action"] == action]


class Container:
    """One container of the image; ``run`` is how `podman run` ended (at once if detached)."""

    def __init__(self, name: str, run: "subprocess.CompletedProcess[str]") -> None:
        self.name = name
        self.run = run

    def start(self) -> None:
        podman("start", self.name)

    def inspect(self, template: str) -> str:
        return podman("inspect", "--format", template, self.name).stdout.strip()

    def running(self) -> bool:
        return self.inspect("{{.State.Running}}") == "true"

    def started_at(self) -> float:
        return int(self.inspect("{{.State.StartedAt.UnixNano}}")) / 1e9

    def finished_at(self) -> float:
        return int(self.inspect("{{.State.FinishedAt.UnixNano}}")) / 1e9

    def logs(self) -> str:
        result = podman("logs", self.name, check=False)
        return f"--- {self.name} ---\n{result.stdout}{result.stderr}"

    def records(self) -> list[Record]:
        """The watcher's JSON log lines (stdout)."""
        lines = podman("logs", self.name).stdout.splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def wait_exit(self, timeout: float) -> int:
        """Block until the container stops (podman wait, under a deadline)."""
        try:
            result = podman("wait", self.name, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running {timeout}s later\n{self.logs()}") from None
        return int(result.stdout.strip())

    def signal(self, name: str) -> None:
        podman("kill", "--signal", name, self.name)

    def exec(self, *command: str) -> "subprocess.CompletedProcess[str]":
        return podman("exec", self.name, *command, check=False)

    # -- HTTP --------------------------------------------------------------------------

    def port(self) -> int:
        """The host port published for 9188 (it may change when the container restarts)."""
        return int(podman("port", self.name, "9188/tcp").stdout.strip().rsplit(":", 1)[1])

    def get(self, path: str, port: int | None = None, timeout: float = 2.0) -> tuple[int, str]:
        return http_get(f"http://127.0.0.1:{port or self.port()}{path}", timeout)

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> float:
        """Poll /readyz until 200; returns the time.time() it first answered 200."""
        port = self.port()

        def ready() -> float | None:
            try:
                code, _ = self.get("/readyz", port, timeout=1.0)
            except OSError:  # not listening yet (reset, refused, or the proxy's EOF)
                return None
            return time.time() if code == 200 else None

        return wait_until(ready, timeout, f"{self.name} /readyz 200", self.logs)

    def status(self) -> Record:
        code, body = self.get("/status")
        assert code == 200, body
        value = json.loads(body)
        assert isinstance(value, dict)
        return value

    def assert_quiet(self, seconds: float) -> Record:
        """For ``seconds`` (a non-event, so a duration): /status answers, with no finding."""
        deadline = time.monotonic() + seconds
        while True:
            status = self.status()
            assert status["recent_findings"] == [], f"{status}\n{self.logs()}"
            if time.monotonic() >= deadline:
                return status
            time.sleep(0.05)

    def wait_status(
        self, predicate: Callable[[Record], bool], what: str, timeout: float = 10.0
    ) -> Record:
        def check() -> Record | None:
            status = self.status()
            return status if predicate(status) else None

        return wait_until(check, timeout, what, self.logs)
