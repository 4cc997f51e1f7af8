"""A GPU backend that cannot run is loud: asked for by name, `pod-watcher run` exits 2 with
the reason; `auto` finding nothing on a Pod that has GPUs says so at WARNING in the log,
in /status and on /metrics, while /healthz stays 200."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.process import WatcherProcess, run_command, script_command
from tests.e2e.workload import Paths
from tests.gpu.test_gpu_monitor import running
from tests.waiting import until
from watcher.clock import SystemClock
from watcher.gpu.backends.unavailable import Unavailable
from watcher.gpu.monitor import GpuMonitor
from watcher.types import FaultClass, Severity

GPU = "GPU-5a1b7c2e-0c1d-4e5f-8a9b-0c1d2e3f4a50"


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "train.log").write_text("", "utf-8")
    return Paths(tmp_path, logs, logs / "train.log", tmp_path / "state", tmp_path / "term")


@pytest.fixture
def no_pynvml(tmp_path: Path) -> dict[str, str]:
    """PYTHONPATH with a `pynvml` that does not import, whatever this machine has."""
    shadow = tmp_path / "shadow"
    (shadow / "pynvml").mkdir(parents=True)
    (shadow / "pynvml" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'pynvml'\")\n", "utf-8"
    )
    return {"PYTHONPATH": str(shadow)}


async def test_the_monitor_over_no_backend_says_so_once_and_is_down() -> None:
    why = f"off: no pynvml, and nvidia-smi is not on PATH, although the Pod has GPUs ({GPU})"
    monitor = GpuMonitor(Unavailable(why), interval=0.01, timeout=1.0, clock=SystemClock())
    async with running(monitor) as findings:
        await until(lambda: monitor.stats.polls >= 3)
    (finding,) = findings
    assert (finding.reason, finding.severity, finding.fault_class) == (
        "GpuMonitorUnavailable",
        Severity.WARNING,
        FaultClass.INFRASTRUCTURE,
    )
    assert finding.evidence == (why,)
    assert not monitor.up() and monitor.healthy()[0]
    status = monitor.status()
    assert (status["backend"], status["up"], status["tool"]) == ("none", False, {"problem": why})
    assert monitor.counters()["poll_failures"] >= 3


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"WATCHER_GPU": "nvml"},
            "WATCHER_GPU=nvml but pynvml does not import (No module named 'pynvml'",
        ),
        (
            {"WATCHER_GPU": "nvidia-smi", "WATCHER_NVIDIA_SMI": "/nowhere/nvidia-smi"},
            "WATCHER_GPU=nvidia-smi but WATCHER_NVIDIA_SMI=/nowhere/nvidia-smi is not found",
        ),
    ],
)
def test_a_backend_asked_for_that_cannot_run_exits_2_with_the_reason(
    paths: Paths, no_pynvml: dict[str, str], env: dict[str, str], message: str
) -> None:
    result = run_command(["run"], {**paths.env(**env), **no_pynvml}, paths.root)
    assert result.returncode == 2, result.stderr
    assert f"pod-watcher: configuration error: {message}" in result.stderr
    assert message in paths.termination.read_text("utf-8")


@pytest.fixture
def nothing_works(paths: Paths, no_pynvml: dict[str, str]) -> Iterator[WatcherProcess]:
    env = paths.env(
        WATCHER_GPU="auto",
        WATCHER_NVIDIA_SMI="/nowhere/nvidia-smi",
        WATCHER_GPU_POLL_INTERVAL="0.2",
    )
    env = {**env, **no_pynvml, "NVIDIA_VISIBLE_DEVICES": GPU}
    process = WatcherProcess(env, cwd=paths.root, command=script_command())
    try:
        yield process.start()
    finally:
        process.close()


@pytest.mark.slow
def test_auto_finding_nothing_on_a_pod_with_gpus_is_a_warning_everywhere(
    nothing_works: WatcherProcess,
) -> None:
    watcher = nothing_works
    watcher.wait_ready()
    record = watcher.wait_log(
        lambda r: str(r.get("msg", "")).startswith("gpu monitor:"), 5, "the choice"
    )
    assert record["level"] == "warning"
    assert f"although the Pod has GPUs (NVIDIA_VISIBLE_DEVICES={GPU})" in record["msg"]
    status = watcher.wait_status(
        lambda s: any(f["reason"] == "GpuMonitorUnavailable" for f in s["recent_findings"]),
        "the finding",
    )
    gpu = status["monitors"]["gpu"]
    assert (gpu["backend"], gpu["up"]) == ("none", False)
    assert [f["problem"] for f in gpu["failures"]] == ["no_backend"]
    (finding,) = [f for f in status["recent_findings"] if f["reason"] == "GpuMonitorUnavailable"]
    assert finding["severity"] == "warning"
    assert watcher.get("/healthz")[0] == 200
    failures = [v for (name, _), v in watcher.metrics().items() if "gpu_poll_failures" in name]
    assert failures and failures[0] >= 1
    assert status["state"] == "watching"
