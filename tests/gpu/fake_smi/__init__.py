"""The fake `nvidia-smi` script next to this file, and a handle on its state file."""

import os
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "nvidia-smi"
UUIDS = (
    "GPU-5a1b7c2e-0c1d-4e5f-8a9b-0c1d2e3f4a50",
    "GPU-6b2c8d3f-1d2e-4f60-9bac-1d2e3f4a5b61",
)
"""The first two GPUs the script prints (bus ids 0000:18:00 and 0000:2a:00)."""


@dataclass(frozen=True)
class FakeSmi:
    """Where one test's fake nvidia-smi reads its state and writes its traces."""

    root: Path
    gpus: int = 2

    @property
    def path(self) -> str:
        return str(SCRIPT)

    def set(self, state: str) -> None:
        """What the next runs print (see the script's docstring)."""
        (self.root / "smi-state").write_text(state + "\n", "utf-8")

    def env(self) -> dict[str, str]:
        return {
            "FAKE_SMI_STATE": str(self.root / "smi-state"),
            "FAKE_SMI_LOG": str(self.root / "smi-runs"),
            "FAKE_SMI_PIDS": str(self.root / "smi-pids"),
            "FAKE_SMI_GPUS": str(self.gpus),
        }

    def runs(self) -> list[str]:
        """The arguments of every run so far."""
        log = self.root / "smi-runs"
        return log.read_text("utf-8").splitlines() if log.exists() else []

    def pids(self) -> list[int]:
        """Every process the fake started (itself and any child)."""
        pids = self.root / "smi-pids"
        return [int(p) for p in pids.read_text("utf-8").split()] if pids.exists() else []


def alive(pid: int) -> bool:
    """Whether a process is still there (and not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def make(root: Path, state: str = "healthy", gpus: int = 2) -> FakeSmi:
    """A fake with its state written, its variables put in this process's environment
    by the caller (monkeypatch), so the backend's child sees them."""
    root.mkdir(parents=True, exist_ok=True)
    fake = FakeSmi(root, gpus)
    fake.set(state)
    assert os.access(SCRIPT, os.X_OK), f"{SCRIPT} is not executable"
    return fake
