"""A fake trainer container for the GPU relay: the real launcher (on Python 3.8 where the
machine has one) running a command, with the fake nvidia-smi on its PATH and the GPUs'
UUIDs in NVIDIA_VISIBLE_DEVICES, in a directory shared with a (pretend) watcher."""

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.gpu.fake_smi import SCRIPT, UUIDS, FakeSmi, alive
from tests.launcher.test_launcher import interpreter
from tests.waiting import wait_until
from watcher.gpu.backends.relay import request
from watcher.gpu.backends.relay_files import RelayFiles, Report
from watcher.gpu.formats.smi_csv import QUERY_FIELDS
from watcher.workload.install import install

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


def trainer_env(smi: FakeSmi, *, gpus: bool = True) -> dict[str, str]:
    """What the NVIDIA container toolkit and the device plugin give a GPU container: the
    tool on PATH (here the fake) and NVIDIA_VISIBLE_DEVICES naming the GPUs."""
    env = {**smi.env(), "PATH": f"{SCRIPT.parent}{os.pathsep}{os.environ['PATH']}"}
    if gpus:
        env["NVIDIA_VISIBLE_DEVICES"] = ",".join(UUIDS[: smi.gpus])
    return env


@dataclass
class TrainerContainer:
    root: Path
    """The shared directory (`/pod-watcher`), the launcher installed in it."""
    smi: FakeSmi
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def files(self) -> RelayFiles:
        return RelayFiles(self.root / "run")

    def ask(self, period: float = 0.1, timeout: float = 5.0, read: str = "health") -> None:
        fields = QUERY_FIELDS if read == "health" else ("uuid", "pci.bus_id", "index", "name")
        self.files.ask(request(period, timeout, read, fields))

    def launch(
        self, command: list[str] | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        base = {k: v for k, v in os.environ.items() if k != "NVIDIA_VISIBLE_DEVICES"}
        proc = subprocess.Popen(
            [interpreter(), str(self.root / "launch"), "--", *(command or SLEEPER)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**base, "POD_WATCHER_TERMINATION_LOG": str(self.root / "term"),
                 "POD_WATCHER_ABSENT_WAIT": "0", **(env or trainer_env(self.smi))},
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    def report_when(self, condition: Callable[[Report], bool], timeout: float = 10.0) -> Report:
        def check() -> Report | None:
            found = self.files.report()
            return found if found is not None and condition(found) else None

        return wait_until(check, timeout, "a GPU relay report", self.describe)

    def describe(self) -> str:
        return f"report: {self.files.report()}\nsmi runs: {self.smi.runs()[-3:]}"

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.communicate(timeout=10)
        for pid in self.smi.pids():  # a fake left hanging by a failed test
            if alive(pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def trainer_container(tmp: Path, smi: FakeSmi) -> Iterator[TrainerContainer]:
    install(tmp / "pw")
    container = TrainerContainer(tmp / "pw", smi)
    try:
        yield container
    finally:
        container.close()
