"""A GPU-only configuration (no logs, probes or heartbeat) runs, and its monitor is up
only while nvidia-smi really answers: `pod-watcher run` with a fake nvidia-smi."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.process import WatcherProcess
from tests.gpu.fake_smi import FakeSmi, make
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

UP = ("watcher_monitor_up", (("monitor", "gpu"),))


@pytest.fixture
def smi(tmp_path: Path) -> FakeSmi:
    return make(tmp_path / "smi")


@pytest.fixture
def watcher(tmp_path: Path, smi: FakeSmi) -> Iterator[WatcherProcess]:
    env = {
        "WATCHER_STATE_DIR": str(tmp_path / "state"),
        "WATCHER_TERMINATION_LOG": str(tmp_path / "termination-log"),
        "WATCHER_HTTP_HOST": "127.0.0.1",
        "WATCHER_HTTP_PORT": "0",
        "WATCHER_GPU": "nvidia-smi",
        "WATCHER_NVIDIA_SMI": smi.path,
        "WATCHER_GPU_POLL_INTERVAL": "0.2",
        "WATCHER_GPU_TIMEOUT": "2",
        **smi.env(),
    }
    process = WatcherProcess(env, cwd=tmp_path)
    try:
        yield process.start()
    finally:
        process.close()


def test_gpu_only_runs_and_is_up_while_nvidia_smi_answers(
    watcher: WatcherProcess, smi: FakeSmi
) -> None:
    watcher.wait_ready()
    status = watcher.status()
    assert list(status["monitors"]) == ["gpu", "state"]
    assert status["state"] == "watching"
    assert watcher.get_json("/readyz") == {"ok": True, "monitors": {"gpu": True, "state": True}}
    assert watcher.metrics()[UP] == 1

    smi.set("driver")  # "couldn't communicate with the NVIDIA driver", exit 9
    wait_until(lambda: watcher.metrics()[UP] == 0, 5, "gpu monitor down", watcher.describe)
    assert watcher.get("/healthz")[0] == 200  # the sidecar is fine; its GPU tool is not
    failures = watcher.metrics()[("watcher_gpu_poll_failures_total", ())]
    assert failures >= 1

    smi.set("healthy")
    wait_until(lambda: watcher.metrics()[UP] == 1, 5, "gpu monitor up again", watcher.describe)
    assert watcher.alive()
