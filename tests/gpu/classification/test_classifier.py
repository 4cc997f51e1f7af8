"""GPU readings to findings: hardware conditions once while they last, counters on change."""

from dataclasses import replace

import pytest

from watcher.gpu.classification.classifier import GpuClassifier
from watcher.gpu.model import (
    GpuId,
    GpuReading,
    Recovery,
    Snapshot,
    ToolFailure,
    ToolProblem,
    normalize_bus_id,
)
from watcher.gpu.xids import xid_class
from watcher.types import FaultClass, Severity

GPU = GpuId(uuid="GPU-1111", bus_id="0000:3b:00", index=0)
HEALTHY = GpuReading(GPU, name="H100", ecc_uncorrected_volatile=0, xid=0, pcie_replays=10)


def found(
    classifier: GpuClassifier, *readings: GpuReading
) -> list[tuple[str, Severity, FaultClass]]:
    findings = classifier.classify(Snapshot("nvml", readings), at=1.0)
    return [(f.reason, f.severity, f.fault_class) for f in findings]


@pytest.mark.parametrize(
    ("bus", "normal"),
    [
        ("00000000:3B:00.0", "0000:3b:00"),
        ("0000:3b:00", "0000:3b:00"),
        ("PCI:0000:9b:00", "0000:9b:00"),
        ("3b:00.0", "0000:3b:00"),
        (None, None),
    ],
)
def test_bus_ids_from_every_tool_meet(bus: str | None, normal: str | None) -> None:
    assert normalize_bus_id(bus) == normal


def test_a_healthy_gpu_gives_nothing_ever() -> None:
    classifier = GpuClassifier()
    assert found(classifier, HEALTHY) == []
    assert found(classifier, HEALTHY) == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"lost": True}, "GpuLost"),
        ({"reset_required": True}, "GpuResetRequired"),
        ({"recovery_action": Recovery.GPU_RESET}, "GpuResetRequired"),
        ({"recovery_action": Recovery.NODE_REBOOT}, "GpuNodeRebootRequired"),
        ({"remapped_rows_failure": True}, "GpuRowRemapFailure"),
        ({"health": {"Memory system": "Failure"}}, "DcgmHealthFailure"),
    ],
)
def test_hardware_conditions_fire_once_while_they_last(
    change: dict[str, object], reason: str
) -> None:
    classifier = GpuClassifier()
    broken = replace(HEALTHY, **change)  # type: ignore[arg-type]
    assert found(classifier, broken) == [(reason, Severity.FATAL, FaultClass.HARDWARE)]
    assert found(classifier, broken) == []
    assert found(classifier, HEALTHY) == []
    assert found(classifier, broken) == [(reason, Severity.FATAL, FaultClass.HARDWARE)]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"remapped_rows_pending": True}, "GpuRowRemapPending"),
        ({"retired_pages_pending": True}, "GpuPageRetirementPending"),
    ],
)
def test_a_repair_pending_until_the_next_reset_is_a_hardware_warning(
    change: dict[str, object], reason: str
) -> None:
    # NVIDIA: with a row remap pending, unaffected applications continue and new ones start
    classifier = GpuClassifier()
    pending = replace(HEALTHY, **change)  # type: ignore[arg-type]
    assert found(classifier, pending) == [(reason, Severity.WARNING, FaultClass.HARDWARE)]
    assert found(classifier, pending) == []


def test_counters_fire_on_an_increase_not_on_what_was_there() -> None:
    classifier = GpuClassifier()
    left_behind = replace(HEALTHY, ecc_uncorrected_volatile=4, xid=79, pcie_replays=500)
    assert found(classifier, left_behind) == []
    more = replace(left_behind, ecc_uncorrected_volatile=5, pcie_replays=501)
    assert found(classifier, more) == [
        ("GpuUncorrectableEcc", Severity.FATAL, FaultClass.HARDWARE),
        ("GpuPcieReplays", Severity.WARNING, FaultClass.HARDWARE),
    ]


@pytest.mark.parametrize(
    ("xid", "reason", "severity", "fault_class"),
    [
        (79, "XidGpuFallenOffBus", Severity.FATAL, FaultClass.HARDWARE),
        (48, "XidUncorrectableMemoryError", Severity.FATAL, FaultClass.HARDWARE),
        (119, "XidGpuResetRequired", Severity.FATAL, FaultClass.HARDWARE),
        (94, "XidContainedMemoryError", Severity.FATAL, FaultClass.TRANSIENT),
        (13, "XidApplicationFault", Severity.WARNING, FaultClass.APPLICATION),
        (31, "XidApplicationFault", Severity.WARNING, FaultClass.APPLICATION),
        (43, "XidChannelTeardown", Severity.INFO, FaultClass.APPLICATION),
        (45, "XidChannelTeardown", Severity.INFO, FaultClass.APPLICATION),
        (63, "XidRowRemapPending", Severity.WARNING, FaultClass.HARDWARE),
        (87, "XidUnlisted", Severity.WARNING, FaultClass.HARDWARE),
    ],
)
def test_a_new_xid_is_judged_by_the_catalog(
    xid: int, reason: str, severity: Severity, fault_class: FaultClass
) -> None:
    classifier = GpuClassifier()
    found(classifier, HEALTHY)
    assert found(classifier, replace(HEALTHY, xid=xid)) == [(reason, severity, fault_class)]
    known = xid_class(xid)
    assert (known.reason, known.severity, known.fault_class) == (reason, severity, fault_class)


def test_warnings_never_fatal() -> None:
    classifier = GpuClassifier()
    noisy = replace(
        HEALTHY,
        thermal_slowdown=True,
        odd_fields=("Addressing Mode",),
        recovery_action=Recovery.DRAIN_P2P,
        health={"PCIe system": "Warning"},
    )
    assert {severity for _, severity, _ in found(classifier, noisy)} == {Severity.WARNING}


def test_each_gpu_keeps_its_own_baseline() -> None:
    classifier = GpuClassifier()
    other = GpuReading(GpuId(uuid="GPU-2222"), ecc_uncorrected_volatile=7)
    assert found(classifier, HEALTHY, other) == []
    assert (
        found(classifier, HEALTHY, replace(other, ecc_uncorrected_volatile=8))[0][0]
        == "GpuUncorrectableEcc"
    )


def test_tool_failures_are_reported_once_until_they_clear() -> None:
    classifier = GpuClassifier()
    failing = Snapshot(
        "nvidia-smi", failures=(ToolFailure(ToolProblem.DRIVER_NOT_LOADED, "exit 9"),)
    )
    (finding,) = classifier.classify(failing, 1.0)
    assert (finding.reason, finding.severity) == ("GpuDriverUnavailable", Severity.WARNING)
    assert finding.evidence == ("exit 9",)
    assert classifier.classify(failing, 2.0) == []
    assert classifier.classify(Snapshot("nvidia-smi", (HEALTHY,)), 3.0) == []
    assert len(classifier.classify(failing, 4.0)) == 1
    lost = Snapshot("nvidia-smi", failures=(ToolFailure(ToolProblem.GPU_LOST, "exit 15"),))
    assert classifier.classify(lost, 5.0)[0].fault_class is FaultClass.HARDWARE


def test_findings_name_the_gpu() -> None:
    (finding,) = GpuClassifier().classify(Snapshot("nvml", (replace(HEALTHY, lost=True),)), 1.0)
    assert finding.gpu == "GPU-1111 0000:3b:00"
    assert finding.source == "gpu/nvml"
    assert finding.message.startswith("GPU-1111 0000:3b:00: the GPU is lost")
