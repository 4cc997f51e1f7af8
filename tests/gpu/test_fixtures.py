"""Every real capture in tests/gpu/captures/ (each with its `.source.txt`) through its parser
(or `replay --kind log`), with the verdict each deserves and where that verdict comes from."""

import json
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.cli import run_cli
from tests.conftest import FIXTURES
from watcher.gpu.formats.common import unparsed
from watcher.gpu.formats.smi_csv import FALLBACK_FIELDS, QUERY_FIELDS
from watcher.gpu.model import Snapshot
from watcher.gpu.replay import READERS, classify_once
from watcher.types import FaultClass, Severity

HELP = "nvsmi-help-query-gpu-590.48.01.txt"
"""`nvidia-smi --help-query-gpu` of driver 590.48.01: NVIDIA's own words on each field,
cited below as [help]."""
CATALOG = "NVIDIA Xid catalog, docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html"
LOGS = {
    # file: (exit code of `replay --kind log`, why)
    "dmesg-iso-xid13-xid43-app-fault.log": (0, f"{CATALOG}: 13 RESTART_APP, 43 IGNORE"),
    "dmesg-xid119-gsp-rpc-timeout-h100.log": (1, f"{CATALOG}: 119 GSP RPC timeout, RESET_GPU"),
}


@dataclass(frozen=True)
class Verdict:
    kind: str
    """The `replay --kind`."""
    gpus: int
    """GPUs read."""
    why: str
    """Where the verdict comes from."""
    reasons: dict[str, int] = field(default_factory=dict)
    """Findings by reason; an empty dict: a healthy capture."""


HEALTHY_SMI = "healthy: every health field reads its healthy value ([help]; the .source.txt)"
EXPECTED: dict[str, Verdict] = {
    "dcgm-exporter-metrics-k8s-rtx4000ada.prom": Verdict(
        "dcgm-metrics", 1,
        "DCGM_FI_DEV_XID_ERRORS 0 (err_msg \"No Error\", NVIDIA/dcgm-exporter gpu_collector.go), "
        "remap counters 0",
    ),
    "dcgmi-diag-r3-pass-nvidia-docs-example.txt": Verdict(
        "dcgmi-health", 4, "every test Pass (NVIDIA DCGM user guide, active health checks)"
    ),
    "dcgmi-health-check-warning-nvidia-docs-example.txt": Verdict(
        "dcgmi-health", 2,
        "two systems at Warning: DCGM_HEALTH_RESULT_WARN, not FAIL (NVIDIA/DCGM "
        "dcgm_structs.h; DCGM user guide, background health checks): warnings",
        {"DcgmHealthWarning": 2},
    ),
    "nvsmi-csv-nounits-tesla-p100.csv": Verdict(
        "nvidia-smi", 1, "healthy: the query asked for no health field, so nothing to say"
    ),
    "nvsmi-driver-not-loaded.txt": Verdict(
        "nvidia-smi", 0,
        "nvidia-smi(1) exit 9, driver not loaded; one capture cannot tell a driver gone from "
        "a container never given GPUs: a warning of the infrastructure",
        {"GpuDriverUnavailable": 1},
    ),
    "nvsmi-q-8xh100-535.183.01.txt": Verdict(
        "nvidia-smi", 8,
        "one GPU: SW Thermal Slowdown Active, clocks reduced for heat ([help] "
        "clocks_event_reasons.sw_thermal_slowdown): slower, not broken, a warning",
        {"GpuThermalSlowdown": 1},
    ),
    "nvsmi-q-8xrtx4090-field-unknown-error-535.154.05.txt": Verdict(
        "nvidia-smi", 8,
        "each GPU: Addressing Mode reads Unknown Error while every health field reads healthy "
        "([help]: \"an error message indicates that retrieving the field failed\"): a warning",
        {"GpuFieldUnreadable": 8},
    ),
    "nvsmi-q-a10-remapped-rows-pending-535.129.03.txt": Verdict(
        "nvidia-smi", 1,
        "Remapped Rows Pending: Yes: the remap applies at the next GPU reset, and meanwhile "
        "\"unaffected applications can continue running\" (NVIDIA, Error Recovery and "
        "Response Flags, row-remapping pending flag): a hardware warning, not a fault",
        {"GpuRowRemapPending": 1},
    ),
    "nvsmi-q-h100-idle.txt": Verdict("nvidia-smi", 1, HEALTHY_SMI),
    "nvsmi-q-x-a100-sxm4-mig-535.54.03.xml": Verdict(
        "nvidia-smi", 1, f"{HEALTHY_SMI}; remapped_rows is plain N/A under MIG"
    ),
    "nvsmi-q-x-a10g-515.105.01.xml": Verdict("nvidia-smi", 1, HEALTHY_SMI),
    "nvsmi-query-gpu-csv-h100-idle.csv": Verdict(
        "nvidia-smi", 1, f"{HEALTHY_SMI}; gpu_recovery_action None"
    ),
    "nvsmi-query-gpu-csv-h100-load.csv": Verdict(
        "nvidia-smi", 1, f"{HEALTHY_SMI}; under load, gpu_recovery_action None"
    ),
    "nvsmi-query-retired-pages-h100-load.csv": Verdict(
        "nvidia-smi", 1,
        "rows per cause with [N/A] addresses: nothing retired on this HBM GPU (.source.txt)",
    ),
    "nvsmi-table-8xh100-550.90.07.txt": Verdict(
        "nvidia-smi", 8, "healthy: Volatile Uncorr. ECC 0 on every GPU, no ERR!"
    ),
    "nvsmi-table-err-fan-525.125.06.txt": Verdict(
        "nvidia-smi", 1,
        "the Fan cell reads ERR!, the table's mark of a failed query, the rest reads normally: "
        "a warning",
        {"GpuFieldUnreadable": 1},
    ),
    "nvsmi-table-h100-load-590.48.01.txt": Verdict(
        "nvidia-smi", 1, "healthy: Volatile Uncorr. ECC 0, no ERR!"
    ),
    "nvsmi-table-rtx2080s-idle-610.57.04.txt": Verdict(
        "nvidia-smi", 1, "healthy: no ECC on this board (N/A), no ERR!"
    ),
}  # fmt: skip
FATAL: set[str] = set()
"""No capture here shows a GPU in need of a reset: a pending remap is a warning."""


def read(name: str) -> Snapshot:
    snapshot, _ = READERS[EXPECTED[name].kind]((FIXTURES / name).read_bytes())
    return snapshot


def test_every_capture_has_an_expected_verdict_and_its_source() -> None:
    captures = {p.name for p in FIXTURES.iterdir() if not p.name.endswith(".source.txt")}
    assert captures == set(EXPECTED) | set(LOGS) | {HELP}
    for name in captures:
        source = (FIXTURES / f"{name}.source.txt").read_text("utf-8")
        assert "Repository:" in source or "docs.nvidia.com" in source, name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capture_verdict(name: str) -> None:
    expected = EXPECTED[name]
    snapshot = read(name)
    assert unparsed(snapshot) is None
    assert len(snapshot.readings) == expected.gpus
    findings = classify_once(snapshot)
    assert Counter(f.reason for f in findings) == Counter(expected.reasons), expected.why
    fatal = [f for f in findings if f.severity is Severity.FATAL]
    assert bool(fatal) == (name in FATAL)
    named = [r.gpu.uuid or r.gpu.bus_id for r in snapshot.readings]
    assert all(named) or expected.kind == "dcgmi-health"


def test_remapped_rows_pending_is_a_hardware_warning() -> None:
    (finding,) = classify_once(read("nvsmi-q-a10-remapped-rows-pending-535.129.03.txt"))
    assert (finding.severity, finding.fault_class) == (Severity.WARNING, FaultClass.HARDWARE)
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


def test_the_query_fields_are_all_known_to_the_590_driver() -> None:
    listed = (FIXTURES / HELP).read_text()
    for name in (*QUERY_FIELDS, *FALLBACK_FIELDS):
        assert f'"{name}"' in listed, name


def records(result: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("name", sorted(LOGS))
def test_dmesg_captures_replay_as_logs_through_the_xid_pack(name: str) -> None:
    result = run_cli("replay", "--kind", "log", "--format", "json", str(FIXTURES / name))
    assert result.returncode == LOGS[name][0], (LOGS[name][1], result.stderr)
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
    for name, verdict in EXPECTED.items():
        by_kind.setdefault(verdict.kind, []).append(FIXTURES / name)
    for kind, paths in by_kind.items():
        result = run_cli("replay", "--kind", kind, "--format", "json", *map(str, paths))
        expected = 1 if any(p.name in FATAL for p in paths) else 0
        assert result.returncode == expected, (kind, result.stderr)
        want = sum((Counter(EXPECTED[p.name].reasons) for p in paths), Counter[str]())
        assert Counter(str(r["reason"]) for r in records(result)) == want
    help_text = run_cli("replay", "--kind", "nvidia-smi", str(FIXTURES / HELP))
    assert help_text.returncode == 2 and "unrecognized output" in help_text.stderr
