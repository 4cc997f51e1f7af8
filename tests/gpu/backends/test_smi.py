"""The nvidia-smi backend against a fake nvidia-smi that prints the real formats, fails
with the real messages and exit codes, hangs, and floods."""

import time
from pathlib import Path

import pytest

from tests.gpu.fake_smi import UUIDS, FakeSmi, alive, make
from tests.waiting import until
from watcher.gpu.backends.smi import FORMAT, SmiBackend
from watcher.gpu.classification.classifier import GpuClassifier
from watcher.gpu.formats.smi_csv import QUERY_FIELDS
from watcher.gpu.model import Recovery, Snapshot, ToolProblem
from watcher.types import FaultClass, Severity

TIMEOUT = 2.0


@pytest.fixture
def smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSmi:
    fake = make(tmp_path / "smi")
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)
    return fake


@pytest.fixture
async def backend(smi: FakeSmi) -> SmiBackend:
    return SmiBackend(smi.path, TIMEOUT)


def problems(snapshot: Snapshot) -> list[ToolProblem]:
    return [f.problem for f in snapshot.failures]


async def test_a_healthy_node_reads_every_gpu_by_uuid_and_bus_id(
    smi: FakeSmi, backend: SmiBackend
) -> None:
    snapshot = await backend.poll()
    assert snapshot.failures == ()
    assert [r.gpu.uuid for r in snapshot.readings] == list(UUIDS)
    assert [r.gpu.bus_id for r in snapshot.readings] == ["0000:18:00", "0000:2a:00"]
    first = snapshot.readings[0]
    assert (first.ecc_uncorrected_volatile, first.remapped_rows_pending) == (0, False)
    assert (first.recovery_action, first.thermal_slowdown, first.lost) == (
        Recovery.NONE,
        False,
        False,
    )
    (run,) = smi.runs()
    assert run == f"--query-gpu={','.join(QUERY_FIELDS)} {FORMAT}"
    assert GpuClassifier().classify(snapshot, 1.0) == []


@pytest.mark.parametrize(
    ("state", "check"),
    [
        ("reset 1", lambda r: r.reset_required),
        ("remap 1", lambda r: r.remapped_rows_pending),
        ("ecc 1 4", lambda r: r.ecc_uncorrected_volatile == 4),
        ("recovery 1 Reset", lambda r: r.recovery_action is Recovery.GPU_RESET),
    ],
)
async def test_a_faulty_gpu_is_read_as_such(
    smi: FakeSmi, backend: SmiBackend, state: str, check: object
) -> None:
    smi.set(state)
    snapshot = await backend.poll()
    healthy, faulty = snapshot.readings
    assert callable(check)
    assert check(faulty) and not check(healthy)
    assert faulty.gpu.uuid == UUIDS[1]


async def test_the_switch_from_healthy_to_reset_required_is_a_hardware_finding(
    smi: FakeSmi, backend: SmiBackend
) -> None:
    classifier = GpuClassifier()
    assert classifier.classify(await backend.poll(), 1.0) == []
    smi.set("reset 0")
    (finding,) = classifier.classify(await backend.poll(), 2.0)
    assert (finding.reason, finding.severity, finding.fault_class) == (
        "GpuResetRequired",
        Severity.FATAL,
        FaultClass.HARDWARE,
    )
    assert finding.gpu is not None and UUIDS[0] in finding.gpu


async def test_a_hanging_nvidia_smi_is_killed_at_the_deadline(smi: FakeSmi, tmp_path: Path) -> None:
    smi.set("hang")
    backend = SmiBackend(smi.path, 0.5)
    started = time.monotonic()
    snapshot = await backend.poll()
    assert time.monotonic() - started < 0.5 + 1.5
    assert problems(snapshot) == [ToolProblem.TIMED_OUT]
    assert "killed" in snapshot.failures[0].detail
    (pid,) = smi.pids()
    assert not alive(pid)
    smi.set("healthy")  # the next poll is a fresh run
    assert len((await backend.poll()).readings) == 2


async def test_a_child_holding_the_output_open_is_killed_with_its_group(smi: FakeSmi) -> None:
    smi.set("orphan")
    backend = SmiBackend(smi.path, 0.5)
    snapshot = await backend.poll()
    assert problems(snapshot) == [ToolProblem.TIMED_OUT]
    parent, child = smi.pids()
    assert not alive(parent)  # reaped
    await until(lambda: not alive(child), 2.0)  # killed; its exit may still be under way


@pytest.mark.parametrize(
    ("state", "problem", "text"),
    [
        ("driver", ToolProblem.DRIVER_NOT_LOADED, "couldn't communicate"),
        ("mismatch", ToolProblem.VERSION_MISMATCH, "version mismatch"),
        ("exit 9", ToolProblem.DRIVER_NOT_LOADED, "exit 9"),
        ("exit 12", ToolProblem.LIBRARY_NOT_FOUND, "exit 12"),
        ("exit 6 No devices were found", ToolProblem.NO_DEVICES, "No devices"),
        ("exit 15", ToolProblem.GPU_LOST, "exit 15"),
        ("exit 255 Unknown Error", ToolProblem.FAILED, "exit 255: Unknown Error"),
        ("exit 3", ToolProblem.FAILED, "exit 3"),
        ("exit 0", ToolProblem.FAILED, "unrecognized"),
        ("garbage", ToolProblem.FAILED, "unrecognized"),
    ],
)
async def test_failures_are_mapped_from_the_message_or_the_exit_code(
    smi: FakeSmi, backend: SmiBackend, state: str, problem: ToolProblem, text: str
) -> None:
    smi.set(state)
    snapshot = await backend.poll()
    assert snapshot.readings == ()
    assert problems(snapshot) == [problem]
    assert text.lower() in snapshot.failures[0].detail.lower()


async def test_a_gpu_fallen_off_the_bus_is_lost_and_the_others_still_read(
    smi: FakeSmi, backend: SmiBackend
) -> None:
    smi.set("lost 1")
    snapshot = await backend.poll()
    by_bus = {r.gpu.bus_id: r for r in snapshot.readings}
    assert by_bus["0000:2a:00"].lost
    assert by_bus["0000:18:00"].gpu.uuid == UUIDS[0] and not by_bus["0000:18:00"].lost
    (finding,) = GpuClassifier().classify(snapshot, 1.0)
    assert (finding.reason, finding.fault_class) == ("GpuLost", FaultClass.HARDWARE)


async def test_an_older_driver_is_asked_again_without_the_field_it_refuses(
    smi: FakeSmi, backend: SmiBackend
) -> None:
    smi.set("old")
    snapshot = await backend.poll()
    assert snapshot.failures == ()
    assert len(snapshot.readings) == 2
    assert snapshot.readings[0].recovery_action is None
    assert "gpu_recovery_action" not in backend.fields
    await backend.poll()
    first, second, third = smi.runs()  # one refused, then one per poll
    assert "gpu_recovery_action" in first
    assert "gpu_recovery_action" not in second and second == third


async def test_output_over_the_cap_is_refused_and_the_run_killed(smi: FakeSmi) -> None:
    smi.set("huge")
    backend = SmiBackend(smi.path, TIMEOUT, max_output=64 * 1024)
    snapshot = await backend.poll()
    assert problems(snapshot) == [ToolProblem.FAILED]
    assert "more than 65536 bytes" in snapshot.failures[0].detail


async def test_a_missing_command_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    backend = SmiBackend(str(tmp_path / "no-such-nvidia-smi"), TIMEOUT)
    snapshot = await backend.poll()
    assert problems(snapshot) == [ToolProblem.FAILED]
    assert "cannot run" in snapshot.failures[0].detail
    await backend.close()
