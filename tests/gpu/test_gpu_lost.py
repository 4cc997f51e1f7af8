"""The GPU monitor, live, on GPUs that answer and then cannot be reached: the fake
nvidia-smi switched from healthy to the driver's real failures, and the fake pynvml with
its driver gone or a GPU lost. Each loss is exactly one fatal hardware finding."""

from pathlib import Path

import pytest

from tests.gpu.fake_pynvml import FakeNvml, h100s
from tests.gpu.fake_smi import FakeSmi, make
from tests.gpu.test_gpu_monitor import running
from tests.waiting import until
from watcher.clock import SystemClock
from watcher.gpu.backends import GpuBackend
from watcher.gpu.backends.nvml import GPU_IS_LOST, NvmlBackend
from watcher.gpu.backends.smi import SmiBackend
from watcher.gpu.monitor import GpuMonitor
from watcher.gpu.ours import OurGpus
from watcher.types import FaultClass, Finding, Severity

DRIVER_NOT_LOADED = 9


@pytest.fixture
def smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSmi:
    fake = make(tmp_path / "smi")
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    return fake


def monitor_of(backend: GpuBackend) -> GpuMonitor:
    return GpuMonitor(backend, interval=0.05, timeout=2.0, clock=SystemClock(), keep=OurGpus(None))


def fatal_hardware(findings: list[Finding]) -> list[str]:
    assert all(f.severity is Severity.FATAL for f in findings), findings
    assert all(f.fault_class is FaultClass.HARDWARE for f in findings), findings
    return [f.reason for f in findings]


async def polls(monitor: GpuMonitor, more: int) -> None:
    target = monitor.stats.polls + more
    await until(lambda: monitor.stats.polls >= target)


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ("driver", "GpuUnreachable"),  # "couldn't communicate with the NVIDIA driver", exit 9
        ("exit 9", "GpuUnreachable"),  # exit 9 alone: driver not loaded (nvidia-smi(1))
        ("exit 6 No devices were found", "GpuUnreachable"),
        ("exit 15", "GpuLost"),  # fell off the bus or otherwise inaccessible
        ("lost 0", "GpuLost"),  # "Unable to determine the device handle for GPU...", exit 15
    ],
)
async def test_nvidia_smi_from_healthy_to_unreachable(
    smi: FakeSmi, state: str, reason: str
) -> None:
    monitor = monitor_of(SmiBackend(smi.path, 2.0))
    async with running(monitor) as findings:
        await polls(monitor, 2)
        assert findings == [] and monitor.up()
        smi.set(state)
        await polls(monitor, 3)
        assert monitor.up() == (state == "lost 0")  # the other GPU still answers
        assert monitor.healthy()[0]
    assert fatal_hardware(findings) == [reason]


async def test_a_pod_never_given_gpus_is_a_warning_not_a_fault(smi: FakeSmi) -> None:
    smi.set("driver")
    monitor = monitor_of(SmiBackend(smi.path, 2.0))
    async with running(monitor) as findings:
        await polls(monitor, 3)
    assert [(f.reason, f.severity) for f in findings] == [
        ("GpuDriverUnavailable", Severity.WARNING)
    ]


async def test_nvml_driver_gone_after_healthy_polls() -> None:
    nvml = FakeNvml(h100s(2))
    monitor = monitor_of(NvmlBackend(nvml, None, 2.0, event_wait_ms=20))
    async with running(monitor) as findings:
        await polls(monitor, 2)
        nvml.driver_error = nvml.init_error = DRIVER_NOT_LOADED
        await polls(monitor, 3)
    (finding,) = findings
    assert fatal_hardware(findings) == ["GpuUnreachable"]
    first, second = nvml.gpus
    assert finding.gpu == f"{first.uuid} 0000:18:00, {second.uuid} 0000:28:00"
    assert "answered before and cannot be reached now" in finding.message


async def test_nvml_gpu_is_lost_on_one_gpu() -> None:
    nvml = FakeNvml(h100s(2))
    monitor = monitor_of(NvmlBackend(nvml, None, 2.0, event_wait_ms=20))
    async with running(monitor) as findings:
        await polls(monitor, 2)
        nvml.gpus[1].failing = GPU_IS_LOST
        await polls(monitor, 3)
    (finding,) = findings
    assert fatal_hardware(findings) == ["GpuLost"]
    assert finding.gpu is not None and finding.gpu.startswith(nvml.gpus[1].uuid)
