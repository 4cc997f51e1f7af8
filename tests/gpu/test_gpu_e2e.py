"""`pod-watcher run` with WATCHER_GPU=nvidia-smi and a fake nvidia-smi, seen from outside:
a GPU that needs a reset holds the Pod (no API access to evict it), GPUs that stop
answering are one hardware fault and never a restart, a hung nvidia-smi is killed and
reported while the watcher stays live, and a kernel Xid line counts only when it names
one of the GPUs nvidia-smi lists."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.process import WatcherProcess, script_command
from tests.e2e.workload import Paths
from tests.gpu.fake_smi import UUIDS, FakeSmi, alive, make
from tests.waiting import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "train.log").write_text("", "utf-8")
    return Paths(tmp_path, logs, logs / "train.log", tmp_path / "state", tmp_path / "term")


@pytest.fixture
def smi(tmp_path: Path) -> FakeSmi:
    return make(tmp_path / "smi")


@pytest.fixture
def watcher(paths: Paths, smi: FakeSmi) -> Iterator[WatcherProcess]:
    env = paths.env(
        WATCHER_GPU="nvidia-smi",
        WATCHER_NVIDIA_SMI=smi.path,
        WATCHER_GPU_POLL_INTERVAL="0.2",
        WATCHER_GPU_TIMEOUT="1",
        **smi.env(),
    )
    process = WatcherProcess(env, cwd=paths.root, command=script_command())
    try:
        yield process.start()
    finally:
        process.close()


def gpu_status(watcher: WatcherProcess) -> dict[str, Any]:
    status = watcher.status()["monitors"]["gpu"]
    assert isinstance(status, dict)
    return status


@pytest.mark.parametrize(
    ("state", "reason"), [("reset 0", "GpuResetRequired"), ("ecc 1 2", "GpuUncorrectableEcc")]
)
def test_a_gpu_that_needs_a_reset_holds_the_pod_without_api_access(
    watcher: WatcherProcess, paths: Paths, smi: FakeSmi, state: str, reason: str
) -> None:
    watcher.wait_ready()
    status = gpu_status(watcher)
    assert status["backend"] == "nvidia-smi"
    assert sorted(status["gpus"]) == [f"{UUIDS[0]} 0000:18:00", f"{UUIDS[1]} 0000:2a:00"]
    watcher.wait_status(lambda s: s["monitors"]["gpu"]["polls"] >= 3, "three polls")
    watcher.assert_stays_alive(0.5)  # healthy GPUs: polled, nothing happens
    assert watcher.status()["state"] == "watching"
    smi.set(state)
    status = watcher.wait_status(lambda s: s["state"] == "holding", "state holding")
    assert reason in status["holding"]
    assert "eviction needs the Kubernetes API" in status["holding"]
    (hold,) = wait_until(lambda: paths.ledger_entries("hold") or None, 5, "the hold entry")
    assert hold["reason"] == reason and hold["exit_code"] is None
    watcher.assert_stays_alive(1.0)  # no exit 88: restarting in place cannot fix the GPU
    assert watcher.get("/healthz")[0] == 200
    finding = next(f for f in status["recent_findings"] if f["reason"] == reason)
    assert (finding["fault_class"], finding["source"]) == ("hardware", "gpu/nvidia-smi")


def test_gpus_that_become_unreachable_are_one_hardware_fault_never_a_restart(
    watcher: WatcherProcess, paths: Paths, smi: FakeSmi
) -> None:
    watcher.wait_ready()
    watcher.wait_status(lambda s: s["monitors"]["gpu"]["polls"] >= 3, "three healthy polls")
    smi.set("driver")  # "couldn't communicate with the NVIDIA driver", exit 9

    def acted() -> list[dict[str, Any]] | None:
        entries = [e for e in paths.ledger_entries() if e["reason"] == "GpuUnreachable"]
        return entries or None

    (entry,) = wait_until(acted, 10, "the ledger entry for GpuUnreachable")
    assert entry["fault_class"] == "hardware"
    assert entry["action"] != "restart" and entry["exit_code"] != 88
    assert [e["action"] for e in paths.ledger_entries() if e["action"] == "restart"] == []
    if watcher.alive():  # without API access: held today, `fail` once the policy has it
        watcher.assert_stays_alive(1.0)
        status = watcher.status()
        found = [f for f in status["recent_findings"] if f["reason"] == "GpuUnreachable"]
        assert [(f["severity"], f["source"]) for f in found] == [("fatal", "gpu/nvidia-smi")]
        assert watcher.get("/healthz")[0] == 200
    else:
        assert watcher.wait_exit() != 88


def test_a_hanging_nvidia_smi_is_killed_reported_and_the_watcher_stays_live(
    watcher: WatcherProcess, smi: FakeSmi
) -> None:
    watcher.wait_ready()
    smi.set("hang")
    status = watcher.wait_status(
        lambda s: any(f["reason"] == "GpuToolTimedOut" for f in s["recent_findings"]),
        "the timed-out finding",
        timeout=10,
    )
    failures = status["monitors"]["gpu"]["failures"]
    assert [f["problem"] for f in failures] == ["timed_out"]
    assert status["monitors"]["gpu"]["up"] is False  # the source does not answer...
    assert "killed" in failures[0]["detail"]
    hung = smi.pids()[-1]
    wait_until(lambda: not alive(hung) or None, 5, "the hung nvidia-smi to be gone")
    assert watcher.get("/healthz")[0] == 200  # ...and restarting the sidecar would not help
    assert watcher.status()["state"] == "watching"  # a warning: nothing is acted on
    smi.set("healthy")
    status = watcher.wait_status(
        lambda s: s["monitors"]["gpu"]["failures"] == [], "a good poll again"
    )
    assert status["monitors"]["gpu"]["up"] is True
    watcher.assert_stays_alive(0.3)


def _xid_79(bus_id: str) -> str:
    return (
        f"[Sun Feb 23 16:24:18 2025] NVRM: Xid (PCI:{bus_id}): 79, pid=2024380, "
        "name=python, GPU has fallen off the bus.\n"
    )


def test_a_kernel_xid_counts_only_for_one_of_the_pods_gpus(
    watcher: WatcherProcess, paths: Paths
) -> None:
    watcher.wait_ready()
    watcher.wait_status(lambda s: s["monitors"]["gpu"]["polls"] >= 1, "a first poll")
    with paths.log.open("a", encoding="utf-8") as log:
        log.write(_xid_79("0000:9b:00"))  # a GPU of another Pod on this node
    status = watcher.wait_status(
        lambda s: any(d["reason"] == "XidGpuFallenOffBus" for d in s["recent_decisions"]),
        "the decision about the other Pod's GPU",
    )
    (decision,) = status["recent_decisions"]
    assert decision["action"] == "none"
    assert "GPU at 0000:9b:00, not one of this Pod's" in decision["explanation"]
    (finding,) = status["recent_findings"]
    assert "PCI:0000:9b:00" in finding["evidence"][0]  # a fact; whose GPU is the policy's call
    watcher.assert_stays_alive(0.5)
    assert watcher.status()["state"] == "watching"
    with paths.log.open("a", encoding="utf-8") as log:
        log.write(_xid_79("0000:18:00"))  # ours: nvidia-smi lists it
    status = watcher.wait_status(lambda s: s["state"] == "holding", "state holding")
    assert "XidGpuFallenOffBus" in status["holding"]
    watcher.assert_stays_alive(0.5)
