"""GPUs read healthy, then unreachable: one hardware finding, live; a warning on a single
capture, which cannot tell a lost driver from a container never given GPUs."""

from dataclasses import replace

import pytest

from watcher.gpu.classification.classifier import GpuClassifier
from watcher.gpu.model import GpuId, GpuReading, Snapshot, ToolFailure, ToolProblem
from watcher.gpu.replay import classify_once
from watcher.types import FaultClass, Finding, Severity

A = GpuReading(GpuId("GPU-aaaa", "0000:18:00"), name="H100", ecc_uncorrected_volatile=0)
B = GpuReading(GpuId("GPU-bbbb", "0000:2a:00"), name="H100", ecc_uncorrected_volatile=0)
HEALTHY = Snapshot("nvidia-smi", (A, B))
DRIVER = ToolFailure(
    ToolProblem.DRIVER_NOT_LOADED,
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
)
GONE = Snapshot("nvidia-smi", failures=(DRIVER,))


def seen(findings: list[Finding]) -> list[tuple[str, Severity, FaultClass]]:
    return [(f.reason, f.severity, f.fault_class) for f in findings]


UNREACHABLE = ("GpuUnreachable", Severity.FATAL, FaultClass.HARDWARE)


def test_the_driver_gone_after_healthy_polls_is_one_hardware_fault() -> None:
    live = GpuClassifier(live=True)
    assert live.classify(HEALTHY, 1.0) == []
    (finding,) = live.classify(GONE, 2.0)
    assert seen([finding]) == [UNREACHABLE]
    assert finding.gpu == "GPU-aaaa 0000:18:00, GPU-bbbb 0000:2a:00"
    assert "GPU-aaaa 0000:18:00, GPU-bbbb 0000:2a:00 answered before" in finding.message
    assert finding.evidence == (DRIVER.detail,)
    assert live.classify(GONE, 3.0) == []  # still gone: once
    assert live.classify(HEALTHY, 4.0) == []  # back
    assert seen(live.classify(GONE, 5.0)) == [UNREACHABLE]  # gone again


@pytest.mark.parametrize(
    "failures",
    [
        (DRIVER,),
        (ToolFailure(ToolProblem.NO_DEVICES, "exit 6: No devices were found"),),
        (  # NVML: every read of each GPU fails with DriverNotLoaded
            replace(DRIVER, detail="NVML error 9: Driver Not Loaded", gpu=A.gpu),
            replace(DRIVER, detail="NVML error 9: Driver Not Loaded", gpu=B.gpu),
        ),
    ],
)
def test_exactly_one_finding_however_the_loss_shows(failures: tuple[ToolFailure, ...]) -> None:
    live = GpuClassifier(live=True)
    live.classify(HEALTHY, 1.0)
    assert seen(live.classify(Snapshot("nvml", failures=failures), 2.0)) == [UNREACHABLE]


def test_one_gpu_of_two_unreachable_while_the_other_reads() -> None:
    live = GpuClassifier(live=True)
    live.classify(HEALTHY, 1.0)
    missing = ToolFailure(ToolProblem.NO_DEVICES, "GPU-bbbb is not visible to NVML", B.gpu)
    (finding,) = live.classify(Snapshot("nvml", (A,), (missing,)), 2.0)
    assert seen([finding]) == [UNREACHABLE]
    assert "GPU-bbbb 0000:2a:00 answered before" in finding.message
    assert finding.gpu == "GPU-bbbb 0000:2a:00"


def test_without_healthy_polls_before_it_stays_a_warning() -> None:
    live = GpuClassifier(live=True)
    assert seen(live.classify(GONE, 1.0)) == [
        ("GpuDriverUnavailable", Severity.WARNING, FaultClass.INFRASTRUCTURE)
    ]
    offline = GpuClassifier()
    offline.classify(HEALTHY, 1.0)
    assert seen(offline.classify(GONE, 2.0))[0][1] is Severity.WARNING
    assert seen(classify_once(GONE)) == [
        ("GpuDriverUnavailable", Severity.WARNING, FaultClass.INFRASTRUCTURE)
    ]


@pytest.mark.parametrize(
    ("problem", "reason"),
    [
        (ToolProblem.TIMED_OUT, "GpuToolTimedOut"),
        (ToolProblem.NOT_LISTED, "GpuNotVisible"),
        (ToolProblem.VERSION_MISMATCH, "GpuDriverUnavailable"),
        (ToolProblem.FAILED, "GpuToolFailed"),
    ],
)
def test_other_failures_after_healthy_polls_stay_warnings(
    problem: ToolProblem, reason: str
) -> None:
    live = GpuClassifier(live=True)
    live.classify(HEALTHY, 1.0)
    failing = Snapshot("nvidia-smi", failures=(ToolFailure(problem, "detail"),))
    ((got, severity, _),) = seen(live.classify(failing, 2.0))
    assert (got, severity) == (reason, Severity.WARNING)
