"""A trainer Pod as the manifests wire it, for the kubelet model: the real watcher as a native
sidecar with its rule and startupProbe, the trainer's command behind the real launcher."""

import json
import socket
import sys
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.kubelet.model import KubeletModel
from tests.kubelet.pod import pod_spec

RESTART_ON_88 = [
    {"action": "RestartAllContainers", "exitCodes": {"operator": "In", "values": [88]}}
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class TrainerPod:
    root: Path
    port: int

    @property
    def launcher_dir(self) -> Path:
        return self.root / "pw"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def watcher_message(self) -> Path:
        return self.root / "watcher.termination-log"

    @property
    def trainer_message(self) -> Path:
        return self.root / "trainer.termination-log"

    def spec(
        self,
        trainer: Sequence[str],
        watcher_env: Mapping[str, str] | None = None,
        trainer_env: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        env = {
            "WATCHER_LAUNCHER_DIR": str(self.launcher_dir),
            "WATCHER_STATE_DIR": str(self.state),
            "WATCHER_TERMINATION_LOG": str(self.watcher_message),
            "WATCHER_HTTP_HOST": "127.0.0.1",
            "WATCHER_HTTP_PORT": str(self.port),
            "WATCHER_GPU": "off",
            "WATCHER_LOG_FORMAT": "json",
            **(watcher_env or {}),
        }
        workload = {"POD_WATCHER_TERMINATION_LOG": str(self.trainer_message), **(trainer_env or {})}
        probe = {"httpGet": {"path": "/readyz", "port": self.port}, "periodSeconds": 0.05,
                 "failureThreshold": 600}  # fmt: skip
        return {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 5,
            "initContainers": [
                {
                    "name": "pod-watcher",
                    "restartPolicy": "Always",
                    "restartPolicyRules": RESTART_ON_88,
                    "command": [sys.executable, "-m", "watcher", "run"],
                    "env": _env(env),
                    "startupProbe": probe,
                }
            ],
            "containers": [
                {
                    "name": "trainer",
                    "command": [sys.executable, str(self.launcher_dir / "launch"), "--", *trainer],
                    "env": _env(workload),
                }
            ],
        }

    def model(self, spec: dict[str, Any], relist: float = 0.25) -> KubeletModel:
        return KubeletModel(
            pod_spec(spec),
            self.root,
            relist=relist,
            backoff=1.0,
            termination_logs={"pod-watcher": self.watcher_message, "trainer": self.trainer_message},
        )

    def ledger(self, action: str | None = None) -> list[dict[str, Any]]:
        path = self.state / "ledger.jsonl"
        if not path.exists():
            return []
        entries = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]
        return [e for e in entries if action is None or e["action"] == action]

    def status(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}/status"
        with urllib.request.urlopen(url, timeout=5) as response:
            value = json.loads(response.read())
        assert isinstance(value, dict)
        return value

    def watcher_records(self) -> list[dict[str, Any]]:
        """The watcher's JSON log lines, across all its restarts."""
        path = self.root / "pod-watcher.container.log"
        records = []
        for line in path.read_text("utf-8", "replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records


def _env(values: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in values.items()]


def trainer_script(body: str) -> list[str]:
    """A Python trainer; ``START`` is the launcher start it runs in (1 at first)."""
    prelude = "import os, sys, time, signal\nSTART = int(os.environ['POD_WATCHER_START'])\n"
    return [sys.executable, "-c", prelude + body]
