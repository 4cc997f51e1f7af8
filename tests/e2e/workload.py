"""What a dying workload writes, and what the watcher leaves in its state directory."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.process import WatcherProcess

NCCL_TIMEOUT = (
    "[rank3]:[E1126 10:12:13.123456 1234 ProcessGroupNCCL.cpp:632] [PG ID 0 PG GUID "
    "0(default_pg) Rank 3] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=5, "
    "OpType=ALLREDUCE) ran for 600014 milliseconds before timing out."
)
"""A fatal line: reason NcclWatchdogTimeout, fault class transient (restart in place)."""
NCCL_ERROR = (
    "torch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/c10d/"
    "NCCLUtils.hpp:275, remote process exited or there was a network error"
)
"""Matches NcclError and DistBackendError: what the other ranks print as they die."""
COMM_ABORTED = "[rank1]: RuntimeError: NCCL communicator was aborted on rank 1."
"""Matches NcclCommunicatorAborted."""
DYING = (
    f"[rank0]: {NCCL_ERROR}\n{COMM_ABORTED}\n"
    "[rank2]:[E1126 10:12:14.000001 99 ProcessGroupNCCL.cpp:1594] Watchdog caught "
    "collective operation timeout: WorkNCCL(SeqNum=6, OpType=BROADCAST) ran for 600001 ms\n"
)
"""The dying workload's last errors, each of them a fatal match on its own."""
BENIGN = "step 120 | loss 2.3417 | lr 3.0e-04 | 151.2 TFLOP/s\n"


def append(path: Path, text: str) -> int:
    """Append ``text`` the way a logging process does; returns the offset it starts at."""
    with path.open("ab") as handle:
        offset = handle.tell()
        handle.write(text.encode("utf-8"))
    return offset


@dataclass(frozen=True)
class Paths:
    """One Pod's worth of files: a log, the state emptyDir and the termination log."""

    root: Path
    logs: Path
    log: Path
    state: Path
    termination: Path

    @property
    def ledger(self) -> Path:
        return self.state / "ledger.jsonl"

    @property
    def cursors(self) -> Path:
        return self.state / "cursors.json"

    def env(self, **overrides: str) -> dict[str, str]:
        """The environment every test starts from, with ``overrides`` (WATCHER_ names)."""
        env = {
            "WATCHER_LOG_PATHS": str(self.logs / "*.log"),
            "WATCHER_STATE_DIR": str(self.state),
            "WATCHER_TERMINATION_LOG": str(self.termination),
            "WATCHER_HTTP_PORT": "0",
            "WATCHER_HTTP_HOST": "127.0.0.1",
            "WATCHER_GPU": "off",
            # restarts follow each other in these tests; the back-off has tests of its own
            "WATCHER_RESTART_BACKOFF": "0",
        }
        return {**env, **overrides}

    def ledger_entries(self, action: str | None = None) -> list[dict[str, Any]]:
        if not self.ledger.exists():
            return []
        entries = [json.loads(line) for line in self.ledger.read_text("utf-8").splitlines()]
        return [e for e in entries if action is None or e["action"] == action]


def fire_and_exit(process: WatcherProcess, paths: Paths, line: str = NCCL_TIMEOUT) -> int:
    """Append a fatal line to a ready watcher and return the code it exits with."""
    append(paths.log, line + "\n")
    return process.wait_exit(5.0)
