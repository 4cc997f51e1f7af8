"""Every real capture in shared/fixtures/gpu/ through its parser (or `replay --kind log`),
with the verdict each deserves. Skipped when the folder is not there."""

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.cli import run_cli
from tests.conftest import FIXTURES
from watcher.gpu.model import Snapshot
from watcher.gpu.parse_common import unparsed
from watcher.gpu.parse_dcgm import parse_exporter
from watcher.gpu.parse_smi_csv import FALLBACK_FIELDS, QUERY_FIELDS
from watcher.gpu.replay import READERS, classify_once
from watcher.types import FaultClass, Severity

pytestmark = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"no captures in {FIXTURES}")

HELP = "nvsmi-help-query-gpu-590.48.01.txt"
LOGS = {
    "dmesg-iso-xid13-xid43-app-fault.log": 0,
    "dmesg-xid119-gsp-rpc-timeout-h100.log": 1,
}
EXPECTED: dict[str, tuple[str, int, dict[str, int]]] = {
    # file: (replay kind, GPUs read, {reason: findings})
    "dcgm-exporter-metrics-k8s-rtx4000ada.prom": ("dcgm-metrics", 1, {}),
    "dcgmi-diag-r3-pass-nvidia-docs-example.txt": ("dcgmi-health", 4, {}),
    "dcgmi-health-check-warning-nvidia-docs-example.txt": (
        "dcgmi-health", 2, {"DcgmHealthWarning": 2},
    ),
    "nvsmi-csv-nounits-tesla-p100.csv": ("nvidia-smi", 1, {}),
    "nvsmi-driver-not-loaded.txt": ("nvidia-smi", 0, {"GpuDriverUnavailable": 1}),
    "nvsmi-q-8xh100-535.183.01.txt": ("nvidia-smi", 8, {"GpuThermalSlowdown": 1}),
    "nvsmi-q-8xrtx4090-field-unknown-error-535.154.05.txt": (
        "nvidia-smi", 8, {"GpuFieldUnreadable": 8},
    ),
    "nvsmi-q-a10-remapped-rows-pending-535.129.03.txt": (
        "nvidia-smi", 1, {"GpuRowRemapPending": 1},
    ),
    "nvsmi-q-h100-idle.txt": ("nvidia-smi", 1, {}),
    "nvsmi-q-x-a100-sxm4-mig-535.54.03.xml": ("nvidia-smi", 1, {}),
    "nvsmi-q-x-a10g-515.105.01.xml": ("nvidia-smi", 1, {}),
    "nvsmi-query-gpu-csv-h100-idle.csv": ("nvidia-smi", 1, {}),
    "nvsmi-query-gpu-csv-h100-load.csv": ("nvidia-smi", 1, {}),
    "nvsmi-query-retired-pages-h100-load.csv": ("nvidia-smi", 1, {}),
    "nvsmi-table-8xh100-550.90.07.txt": ("nvidia-smi", 8, {}),
    "nvsmi-table-err-fan-525.125.06.txt": ("nvidia-smi", 1, {"GpuFieldUnreadable": 1}),
    "nvsmi-table-h100-load-590.48.01.txt": ("nvidia-smi", 1, {}),
    "nvsmi-table-rtx2080s-idle-610.57.04.txt": ("nvidia-smi", 1, {}),
}  # fmt: skip
FATAL = {"nvsmi-q-a10-remapped-rows-pending-535.129.03.txt"}


def read(name: str) -> Snapshot:
    kind = EXPECTED[name][0]
    snapshot, _ = READERS[kind]((FIXTURES / name).read_bytes())
    return snapshot


def test_every_capture_has_an_expected_verdict() -> None:
    captures = {p.name for p in FIXTURES.iterdir() if not p.name.endswith(".source.txt")}
    assert captures == set(EXPECTED) | set(LOGS) | {HELP}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capture_verdict(name: str) -> None:
    kind, gpus, reasons = EXPECTED[name]
    snapshot = read(name)
    assert unparsed(snapshot) is None
    assert len(snapshot.readings) == gpus
    findings = classify_once(snapshot)
    assert Counter(f.reason for f in findings) == Counter(reasons)
    fatal = [f for f in findings if f.severity is Severity.FATAL]
    assert bool(fatal) == (name in FATAL)
    assert all(r.gpu.uuid or r.gpu.bus_id or kind == "dcgmi-health" for r in snapshot.readings)


def test_remapped_rows_pending_is_a_hardware_fault() -> None:
    (finding,) = classify_once(read("nvsmi-q-a10-remapped-rows-pending-535.129.03.txt"))
    assert (finding.severity, finding.fault_class) == (Severity.FATAL, FaultClass.HARDWARE)
    assert finding.gpu == "GPU-73d12ef7-f589-f867-4259-c7090ab44736 0000:07:00"


def test_unknown_error_field_and_driver_messages_are_warnings_only() -> None:
    for name in (
        "nvsmi-q-8xrtx4090-field-unknown-error-535.154.05.txt",
        "nvsmi-driver-not-loaded.txt",
    ):
        findings = classify_once(read(name))
        assert findings and {f.severity for f in findings} == {Severity.WARNING}
    (driver,) = classify_once(read("nvsmi-driver-not-loaded.txt"))
    assert driver.fault_class is FaultClass.INFRASTRUCTURE


def test_healthy_h100_captures_have_no_fatal_finding() -> None:
    for name in EXPECTED:
        if "h100" in name:
            assert not [f for f in classify_once(read(name)) if f.severity is Severity.FATAL]


def test_exporter_capture_filters_by_its_pod_labels() -> None:
    text = (FIXTURES / "dcgm-exporter-metrics-k8s-rtx4000ada.prom").read_text()
    mine = parse_exporter(text, pod="cuda-75454ffb9f-8ljq7", namespace="default")
    (reading,) = mine.readings
    assert reading.gpu.uuid == "GPU-a8394b51-c086-568a-9f1a-c1e1c934c44c"
    assert reading.gpu.bus_id == "0000:00:02"
    assert (reading.xid, reading.pcie_replays, reading.remapped_rows_failure) == (0, 0, False)
    assert parse_exporter(text, pod="cuda-75454ffb9f-8ljq7", namespace="kube-system").readings == ()
    assert parse_exporter(text, pod="someone-else").readings == ()
    assert len(parse_exporter(text, uuids=[reading.gpu.uuid]).readings) == 1


def test_the_query_fields_are_all_known_to_the_590_driver() -> None:
    listed = (FIXTURES / HELP).read_text()
    for field in (*QUERY_FIELDS, *FALLBACK_FIELDS):
        assert f'"{field}"' in listed, field


def records(result: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("name", sorted(LOGS))
def test_dmesg_captures_replay_as_logs_through_the_xid_pack(name: str) -> None:
    result = run_cli("replay", "--kind", "log", "--format", "json", str(FIXTURES / name))
    assert result.returncode == LOGS[name], result.stderr
    found = records(result)
    assert found and all(r["pack"] == "xid" for r in found)
    fatal = {(r["reason"], r["fault_class"]) for r in found if r["severity"] == "fatal"}
    if "xid119" in name:
        assert fatal == {("XidGpuResetRequired", "hardware")}
    else:  # Xid 13 and 43: faults of the program, never fatal on their own
        assert fatal == set()
        assert {r["reason"] for r in found} == {"XidApplicationFault", "XidChannelTeardown"}


def test_cli_replays_the_gpu_captures() -> None:
    by_kind: dict[str, list[Path]] = {}
    for name, (kind, _, _) in EXPECTED.items():
        by_kind.setdefault(kind, []).append(FIXTURES / name)
    for kind, paths in by_kind.items():
        result = run_cli("replay", "--kind", kind, "--format", "json", *map(str, paths))
        expected = 1 if any(p.name in FATAL for p in paths) else 0
        assert result.returncode == expected, (kind, result.stderr)
        want = sum((Counter(EXPECTED[p.name][2]) for p in paths), Counter[str]())
        assert Counter(str(r["reason"]) for r in records(result)) == want
    help_text = run_cli("replay", "--kind", "nvidia-smi", str(FIXTURES / HELP))
    assert help_text.returncode == 2 and "unrecognized output" in help_text.stderr
