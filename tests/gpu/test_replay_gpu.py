"""`pod-watcher replay --kind nvidia-smi|dcgm-metrics|dcgmi-health`: one file, one poll."""

import io
import json
import subprocess
from pathlib import Path

import pytest

from tests.cli import run_cli
from tests.gpu.samples import (
    CSV_HEALTHY,
    DCGMI_NEW,
    EXPORTER,
    Q_BANNER,
    Q_HEALTHY,
    UUID1,
    q_block,
)
from watcher.config.settings import DEFAULT_ACTIONS
from watcher.gpu.model import GpuId, GpuReading, Snapshot, ToolFailure, ToolProblem
from watcher.gpu.replay import (
    GpuReplayer,
    UnreadableOutput,
    classify_once,
    replay_gpu,
    zero_baseline,
)
from watcher.policy.rules import configured_action
from watcher.replay import Replayer, write_hits
from watcher.rules.packs import load_pack
from watcher.types import Action, FaultClass, Finding, Severity

GPU = GpuId(uuid="GPU-1", bus_id="0000:3b:00")
RECORD_KEYS = {
    "file", "line", "offset", "reason", "severity", "fault_class", "action", "count",
    "window_s", "pack", "message", "evidence", "gpu", "source",
}  # fmt: skip


def reasons(*readings: GpuReading, failures: tuple[ToolFailure, ...] = ()) -> list[str]:
    return [f.reason for f in classify_once(Snapshot("nvml", readings, failures))]


def test_one_poll_counts_against_a_zero_baseline() -> None:
    assert reasons(GpuReading(GPU, ecc_uncorrected_volatile=0, xid=0, pcie_replays=120)) == []
    assert reasons(GpuReading(GPU, ecc_uncorrected_volatile=2)) == ["GpuUncorrectableEcc"]
    assert reasons(GpuReading(GPU, xid=79)) == ["XidGpuFallenOffBus"]
    assert reasons(GpuReading(GPU, xid=13)) == ["XidApplicationFault"]
    assert reasons(GpuReading(GPU, ecc_uncorrected_volatile=None, xid=None)) == []


def test_conditions_and_tool_failures_fire_once() -> None:
    lost = GpuReading(GPU, lost=True, remapped_rows_pending=True)
    assert reasons(lost) == ["GpuLost", "GpuRowRemapPending"]
    assert [f.severity for f in classify_once(Snapshot("nvml", (lost,)))] == [
        Severity.FATAL,
        Severity.WARNING,
    ]
    failure = ToolFailure(ToolProblem.DRIVER_NOT_LOADED, "couldn't communicate")
    assert reasons(failures=(failure,)) == ["GpuDriverUnavailable"]


def test_the_zero_baseline_keeps_identity_and_replays_only() -> None:
    reading = GpuReading(GPU, name="H100", lost=True, ecc_uncorrected_volatile=5, pcie_replays=9)
    (zero,) = zero_baseline(Snapshot("nvml", (reading,))).readings
    assert zero == GpuReading(GPU, ecc_uncorrected_volatile=0, pcie_replays=9)


def test_action_follows_severity_and_fault_class() -> None:
    def action(finding: Finding) -> Action:
        return configured_action(finding, DEFAULT_ACTIONS)

    (fatal,) = classify_once(Snapshot("nvml", (GpuReading(GPU, reset_required=True),)))
    assert action(fatal) is DEFAULT_ACTIONS[FaultClass.HARDWARE]
    (warning,) = classify_once(Snapshot("nvml", (GpuReading(GPU, thermal_slowdown=True),)))
    assert action(warning) is Action.WARN
    (info,) = classify_once(Snapshot("nvml", (GpuReading(GPU, xid=43),)))
    assert info.severity is Severity.INFO
    assert action(info) is Action.NONE


def test_replay_gpu_reads_a_file_with_lines(tmp_path: Path) -> None:
    path = tmp_path / "q.txt"
    path.write_text(Q_BANNER + q_block(remap="Pending                           : Yes"))
    (hit,) = replay_gpu(str(path), "nvidia-smi", DEFAULT_ACTIONS)
    assert hit.line == Q_BANNER.count("\n") + 1
    assert hit.finding.reason == "GpuRowRemapPending"
    assert hit.text().startswith(f"{path}:{hit.line}: GpuRowRemapPending [warning, hardware -> ")


def test_one_loop_and_one_writer_serve_log_and_gpu_replay(tmp_path: Path) -> None:
    dmesg = tmp_path / "dmesg.log"
    dmesg.write_text("NVRM: Xid (PCI:0000:3b:00): 79, pid=1, name=python, GPU has fallen off\n")
    smi = tmp_path / "smi.txt"
    smi.write_text(Q_BANNER + q_block(dram_unc="4"))
    log = Replayer(load_pack("xid"), DEFAULT_ACTIONS, max_line=1 << 20, chunk=1 << 20)
    out = io.StringIO()
    for replayer, path in ((log, dmesg), (GpuReplayer("nvidia-smi", DEFAULT_ACTIONS), smi)):
        assert write_hits(replayer.replay(str(path)), "json", out) == (1, 1)
    from_log, from_gpu = map(json.loads, out.getvalue().splitlines())
    assert set(from_log) <= set(from_gpu) == RECORD_KEYS
    assert (from_log["reason"], from_gpu["reason"]) == ("XidGpuFallenOffBus", "GpuUncorrectableEcc")
    for replayer in (log, GpuReplayer("nvidia-smi", DEFAULT_ACTIONS)):
        with pytest.raises(OSError):
            list(replayer.replay(str(tmp_path / "missing")))
    with pytest.raises(UnreadableOutput):
        list(GpuReplayer("dcgm-metrics", DEFAULT_ACTIONS).replay(str(smi)))
    with pytest.raises(ValueError, match="unknown GPU replay kind 'nvml'"):
        GpuReplayer("nvml", DEFAULT_ACTIONS)


def replay(tmp_path: Path, kind: str, *texts: str) -> subprocess.CompletedProcess[str]:
    paths = []
    for n, text in enumerate(texts):
        path = tmp_path / f"poll-{n}.txt"
        path.write_text(text)
        paths.append(str(path))
    return run_cli("replay", "--kind", kind, "--format", "json", *paths)


def test_cli_nvidia_smi_exit_codes_and_json_shape(tmp_path: Path) -> None:
    healthy = replay(tmp_path, "nvidia-smi", CSV_HEALTHY, Q_HEALTHY)
    assert (healthy.returncode, healthy.stdout) == (0, ""), healthy.stderr
    broken = Q_BANNER + q_block(dram_unc="4")
    result = replay(tmp_path, "nvidia-smi", CSV_HEALTHY, broken)
    assert result.returncode == 1, result.stderr
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert set(record) == RECORD_KEYS
    assert record["file"] == str(tmp_path / "poll-1.txt")
    assert record["line"] == Q_BANNER.count("\n") + 1
    assert (record["reason"], record["severity"]) == ("GpuUncorrectableEcc", "fatal")
    assert (record["fault_class"], record["action"]) == ("hardware", "evict")
    assert record["gpu"] == "GPU-11111111-2222-3333-4444-555555555555 0000:3b:00"
    assert record["source"] == "gpu/nvidia-smi"
    assert "from 0 to 4" in str(record["message"])


def test_cli_dcgm_metrics(tmp_path: Path) -> None:
    result = replay(tmp_path, "dcgm-metrics", EXPORTER)
    assert result.returncode == 1, result.stderr
    found = [json.loads(line) for line in result.stdout.splitlines()]
    by_gpu = {(r["gpu"], r["reason"], r["severity"]) for r in found}
    assert (f"{UUID1} 0000:9b:00", "XidGpuFallenOffBus", "fatal") in by_gpu
    assert (f"{UUID1} 0000:9b:00", "GpuUncorrectableEcc", "fatal") in by_gpu
    assert (f"{UUID1} 0000:9b:00", "GpuNodeRebootRequired", "fatal") in by_gpu
    assert (f"{UUID1} 0000:9b:00", "GpuRowRemapFailure", "fatal") in by_gpu
    first = [r for r in found if r["gpu"] != f"{UUID1} 0000:9b:00"]
    assert [(r["reason"], r["severity"], r["line"]) for r in first] == [
        ("DcgmHealthWarning", "warning", None)
    ]


def test_cli_dcgmi_health(tmp_path: Path) -> None:
    result = replay(tmp_path, "dcgmi-health", DCGMI_NEW)
    assert result.returncode == 1, result.stderr
    found = [
        (r["gpu"], r["reason"], r["line"]) for r in map(json.loads, result.stdout.splitlines())
    ]
    assert found == [
        ("GPU index 0", "DcgmHealthWarning", 6),
        ("GPU index 3", "DcgmHealthFailure", 12),
        ("GPU index 3", "DcgmHealthWarning", 12),
    ]
    warned = replay(tmp_path, "dcgmi-health", "Error: Health watches not enabled.\n")
    assert warned.returncode == 0
    assert json.loads(warned.stdout)["reason"] == "GpuToolFailed"


@pytest.mark.parametrize("kind", ["nvidia-smi", "dcgm-metrics", "dcgmi-health"])
def test_cli_bad_input_exits_2(tmp_path: Path, kind: str) -> None:
    garbage = replay(tmp_path, kind, "this is not what the tool prints\n")
    assert garbage.returncode == 2
    assert "unrecognized output" in garbage.stderr
    missing = run_cli("replay", "--kind", kind, str(tmp_path / "nope"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_cli_text_format_and_unknown_kind(tmp_path: Path) -> None:
    path = tmp_path / "smi.txt"
    path.write_text(Q_BANNER + q_block(thermal="Active"))
    text = run_cli("replay", "--kind", "nvidia-smi", str(path))
    assert text.returncode == 0
    assert text.stdout.startswith(f"{path}:{Q_BANNER.count(chr(10)) + 1}: GpuThermalSlowdown [")
    assert run_cli("replay", "--kind", "nvml", str(path)).returncode == 2
