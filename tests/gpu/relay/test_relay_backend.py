"""The relay backend: the trainer's GPUs as the launcher's relay reports them, and what it
says when there is nothing to read (the trainer not running, a relay dead or stuck, no
GPU in the trainer's container)."""

import asyncio
import fcntl
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gpu.fake_pynvml import FakeNvml, h100s
from tests.gpu.fake_smi import UUIDS, FakeSmi, make
from tests.gpu.relay.launched import TrainerContainer, trainer_container
from tests.waiting import wait_until
from watcher.gpu.backends.relay import RelayBackend, RelayUuids
from watcher.gpu.backends.relay_files import RelayFiles
from watcher.gpu.classification.classifier import GpuClassifier
from watcher.gpu.formats.smi_csv import QUERY_FIELDS
from watcher.gpu.model import Snapshot, ToolProblem
from watcher.launcher.channel import LAUNCHER_LOCK
from watcher.launcher.gpu_read import Nvml
from watcher.launcher.gpu_relay import RELAY_LOCK, REPORT, REQUEST
from watcher.types import FaultClass, Finding, Severity


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeRelay:
    """Plays the launcher and its relay: holds their locks, writes reports."""

    def __init__(self, run: Path) -> None:
        self.run = run
        run.mkdir(parents=True, exist_ok=True)
        self.locks: dict[str, int] = {}
        self.seq = 0

    def hold(self, name: str) -> None:
        fd = os.open(self.run / name, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.locks[name] = fd

    def let_go(self, name: str) -> None:
        os.close(self.locks.pop(name))

    def report(self, mono: float, pid: int = 4242, start: int = 1, **fields: Any) -> None:
        self.seq += 1
        report = {
            **{"version": 1, "pid": pid, "start": start, "seq": self.seq, "mono": mono},
            **{"period": 10.0, "evidence": "NVIDIA_VISIBLE_DEVICES=" + UUIDS[0]},
            **{"uuids": [UUIDS[0]], "tool": "nvidia-smi", "tool_path": "/usr/bin/nvidia-smi"},
            **{"tool_problem": None, "poll": None, "cost": {}, "done": None},
            **fields,
        }
        (self.run / REPORT).write_text(json.dumps(report), "utf-8")

    def close(self) -> None:
        for fd in self.locks.values():
            os.close(fd)


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[FakeRelay]:
    fake = FakeRelay(tmp_path / "run")
    fake.hold(LAUNCHER_LOCK)
    fake.hold(RELAY_LOCK)
    yield fake
    fake.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def backend_of(relay: FakeRelay, clock: Clock, *, named: bool = False) -> RelayBackend:
    return RelayBackend(RelayFiles(relay.run), period=10.0, timeout=5.0, named=named, now=clock)


def smi_poll(code: int, stdout: str, stderr: str = "", number: int = 1) -> dict[str, Any]:
    args = ["--query-gpu=" + ",".join(QUERY_FIELDS), "--format=csv,nounits"]
    return {"args": args, "code": code, "stdout": stdout, "stderr": stderr, "timed_out": False,
            "overflow": False, "error": None, "stuck_pid": None, "number": number}  # fmt: skip


def problems(snapshot: Snapshot) -> list[ToolProblem]:
    return [f.problem for f in snapshot.failures]


HEALTHY_CSV = (
    ", ".join(QUERY_FIELDS)
    + f"\n{UUIDS[0]}, 00000000:18:00.0, 0, NVIDIA H100 80GB HBM3, 0, No, No, [N/A], "
    "Not Active, Not Active, None\n"
)


async def test_the_first_poll_asks_for_the_relay(relay: FakeRelay, clock: Clock) -> None:
    backend = backend_of(relay, clock)
    await backend.poll()
    asked = json.loads((relay.run / REQUEST).read_text())
    assert (asked["period"], asked["timeout"], asked["read"]) == (10.0, 5.0, "health")
    assert asked["query"] == list(QUERY_FIELDS) and asked["format"] == "csv,nounits"
    stamp = (relay.run / REQUEST).stat().st_mtime_ns
    await backend.poll()
    assert (relay.run / REQUEST).stat().st_mtime_ns == stamp  # unchanged: not rewritten


async def test_a_fresh_report_is_read_like_nvidia_smi(relay: FakeRelay, clock: Clock) -> None:
    relay.report(clock.now - 3, poll=smi_poll(0, HEALTHY_CSV))
    snapshot = await backend_of(relay, clock).poll()
    assert snapshot.source == "relay" and snapshot.failures == ()
    (reading,) = snapshot.readings
    assert (reading.gpu.uuid, reading.gpu.bus_id) == (UUIDS[0], "0000:18:00")


async def test_the_trainer_s_container_not_running_is_nothing_to_read(
    relay: FakeRelay, clock: Clock
) -> None:
    relay.let_go(LAUNCHER_LOCK)
    relay.let_go(RELAY_LOCK)
    backend = backend_of(relay, clock)
    for _ in range(3):
        clock.now += 100
        assert await backend.poll() == Snapshot("relay")
    assert backend.status()["state"] == "the trainer's container is not running"


async def test_a_relay_that_stops_reporting_is_stale(relay: FakeRelay, clock: Clock) -> None:
    backend = backend_of(relay, clock)
    relay.report(clock.now, poll=smi_poll(0, HEALTHY_CSV))
    assert (await backend.poll()).readings
    clock.now += backend.grace - 1
    assert (await backend.poll()).readings  # the same report, still fresh
    clock.now += 2
    snapshot = await backend.poll()
    assert problems(snapshot) == [ToolProblem.RELAY_STALE]
    assert "has not reported for" in snapshot.failures[0].detail


async def test_a_relay_that_just_started_has_the_grace_to_report(
    relay: FakeRelay, clock: Clock
) -> None:
    """After an in-place restart the report is the old relay's, and old."""
    relay.report(clock.now - 500, poll=smi_poll(0, HEALTHY_CSV))
    backend = backend_of(relay, clock)
    assert await backend.poll() == Snapshot("relay")
    clock.now += backend.grace - 1
    assert await backend.poll() == Snapshot("relay")
    relay.report(clock.now, poll=smi_poll(0, HEALTHY_CSV, number=2))
    clock.now += 2
    assert (await backend.poll()).readings


async def test_a_relay_that_died_is_down_after_the_grace(relay: FakeRelay, clock: Clock) -> None:
    relay.report(clock.now, poll=smi_poll(0, HEALTHY_CSV))
    relay.let_go(RELAY_LOCK)
    backend = backend_of(relay, clock)
    assert (await backend.poll()).readings  # its last report, still fresh
    clock.now += backend.grace + 1
    snapshot = await backend.poll()
    assert problems(snapshot) == [ToolProblem.RELAY_DOWN]
    assert "gpu-relay.lock" in snapshot.failures[0].detail and "died" in snapshot.failures[0].detail


async def test_a_relay_never_started_is_down_after_the_grace(
    relay: FakeRelay, clock: Clock
) -> None:
    relay.let_go(RELAY_LOCK)
    backend = backend_of(relay, clock)
    assert await backend.poll() == Snapshot("relay")
    clock.now += backend.grace + 1
    assert problems(await backend.poll()) == [ToolProblem.RELAY_DOWN]


@pytest.mark.parametrize(("named", "expected"), [(False, []), (True, [ToolProblem.NO_DEVICES])])
async def test_no_gpu_in_the_trainer_is_quiet_under_auto_only(
    relay: FakeRelay, clock: Clock, named: bool, expected: list[ToolProblem]
) -> None:
    relay.let_go(RELAY_LOCK)
    done = "no GPU in the trainer's container (nvidia-smi is not on the trainer's PATH)"
    relay.report(clock.now - 500, tool=None, evidence=None, done=done)
    backend = backend_of(relay, clock, named=named)
    snapshot = await backend.poll()
    assert problems(snapshot) == expected
    assert done in backend.status()["state"]


async def test_gpus_without_a_tool_say_so(relay: FakeRelay, clock: Clock) -> None:
    relay.report(clock.now, tool=None, tool_problem="nvidia-smi is not on the trainer's PATH")
    snapshot = await backend_of(relay, clock).poll()
    assert problems(snapshot) == [ToolProblem.NO_BACKEND]
    evidence = "NVIDIA_VISIBLE_DEVICES=" + UUIDS[0]
    assert f"({evidence}) but nvidia-smi is not on" in snapshot.failures[0].detail


async def test_a_refused_field_is_asked_again_without_it(relay: FakeRelay, clock: Clock) -> None:
    refusal = 'Field "gpu_recovery_action" is not a valid field to query.'
    relay.report(clock.now, poll=smi_poll(2, "", refusal))
    backend = backend_of(relay, clock)
    assert await backend.poll() == Snapshot("relay")  # no finding for an older driver
    await backend.poll()
    asked = json.loads((relay.run / REQUEST).read_text())
    assert "gpu_recovery_action" not in asked["query"] and "uuid" in asked["query"]
    assert "gpu_recovery_action" not in backend.fields


async def test_a_new_relay_with_the_old_pid_is_read_afresh(relay: FakeRelay, clock: Clock) -> None:
    backend = backend_of(relay, clock)
    relay.report(clock.now, pid=8, start=1, poll=smi_poll(0, HEALTHY_CSV, number=1))
    assert (await backend.poll()).readings
    driver = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
    relay.report(clock.now, pid=8, start=2, poll=smi_poll(9, driver, number=1))
    assert problems(await backend.poll()) == [ToolProblem.DRIVER_NOT_LOADED]


@pytest.mark.parametrize(
    ("poll", "problem"),
    [
        ({"timed_out": True}, ToolProblem.TIMED_OUT),
        ({"timed_out": True, "stuck_pid": 77}, ToolProblem.TIMED_OUT),
        ({"error": "cannot run /usr/bin/nvidia-smi: Permission denied"}, ToolProblem.FAILED),
        (
            {
                "code": 9,
                "stdout": "NVIDIA-SMI has failed because it couldn't communicate with "
                "the NVIDIA driver.",
            },
            ToolProblem.DRIVER_NOT_LOADED,
        ),
    ],
)
async def test_what_the_relayed_run_says(
    relay: FakeRelay, clock: Clock, poll: dict[str, Any], problem: ToolProblem
) -> None:
    relay.report(clock.now, poll={**smi_poll(-1, ""), "code": None, **poll})
    assert problems(await backend_of(relay, clock).poll()) == [problem]


async def test_nvml_readings_are_read_as_nvml(relay: FakeRelay, clock: Clock) -> None:
    nvml = FakeNvml(h100s(2))
    nvml.nvmlInit()
    poll = {**Nvml(nvml).read(2.0), "number": 1}
    relay.report(clock.now, tool="nvml", tool_path=None, poll=poll)
    snapshot = await backend_of(relay, clock).poll()
    assert [r.gpu.uuid for r in snapshot.readings] == [g.uuid for g in nvml.gpus]


@pytest.mark.parametrize("tool", ["nvidia-smi", "nvml"])
def test_the_uuids_for_dcgm_come_from_the_environment_else_from_one_read(
    relay: FakeRelay, clock: Clock, tool: str
) -> None:
    source = RelayUuids(RelayFiles(relay.run), period=10.0, timeout=5.0)
    assert source() is None
    assert json.loads((relay.run / REQUEST).read_text())["read"] == "identity"
    relay.report(clock.now, uuids=[UUIDS[1]])
    assert source() == (UUIDS[1],)
    nvml = FakeNvml(h100s(2))
    nvml.nvmlInit()
    poll = Nvml(nvml).read(2.0) if tool == "nvml" else smi_poll(0, HEALTHY_CSV)
    relay.report(clock.now, uuids=[], tool=tool, poll=poll)
    expected = [g.uuid for g in nvml.gpus] if tool == "nvml" else [UUIDS[0]]
    assert source() == tuple(expected)
    relay.report(clock.now, uuids=[], tool=tool, poll={**poll, "code": 9, "error": [9, "gone"]})
    assert source() == tuple(expected)  # once known, kept


async def test_the_relay_s_cpu_time_is_counted_across_its_restarts(
    relay: FakeRelay, clock: Clock
) -> None:
    backend = backend_of(relay, clock)
    # the same pid after an in-place restart: a fresh PID namespace, a new launcher start
    for start, number, cpu in ((1, 1, 0.1), (1, 2, 0.3), (2, 1, 0.05)):
        cost = {"polls": number, "cpu_s": cpu, "children_cpu_s": cpu * 10}
        poll = smi_poll(0, HEALTHY_CSV, number=number)
        relay.report(clock.now, pid=8, start=start, cost=cost, poll=poll)
        await backend.poll()
    assert backend.counters()["relay_cpu_seconds"] == pytest.approx(3.3 + 0.55)
    status = backend.status()
    assert status["relay_cpu_ms_per_poll"] == pytest.approx(50.0)
    assert status["relay_children_cpu_ms_per_poll"] == pytest.approx(500.0)


# -- with the real relay, in a fake trainer container -------------------------------------


@pytest.fixture
def smi(tmp_path: Path) -> FakeSmi:
    return make(tmp_path / "smi")


@pytest.fixture
def trainer(tmp_path: Path, smi: FakeSmi) -> Iterator[TrainerContainer]:
    with trainer_container(tmp_path, smi) as container:
        yield container


@pytest.mark.slow
async def test_gpus_that_become_unreachable_are_one_hardware_finding(
    trainer: TrainerContainer, smi: FakeSmi
) -> None:
    """The whole chain: the request, the launcher's relay running the fake nvidia-smi in
    the trainer's container, the report, and the live classifier."""
    backend = RelayBackend(trainer.files, period=0.1, timeout=5.0, named=True)
    classifier = GpuClassifier(live=True)
    findings: list[Finding] = []

    async def poll() -> Snapshot:
        snapshot = await backend.poll()
        findings.extend(classifier.classify(snapshot, 0.0))
        return snapshot

    assert await poll() == Snapshot("relay")  # asked; the trainer has not started
    trainer.launch()
    wait_until(lambda: trainer.files.relay_alive() or None, 10, "the relay")
    await until_snapshot(poll, lambda s: len(s.readings) == 2)
    assert findings == []
    smi.set("driver")
    await until_snapshot(poll, lambda s: bool(s.failures))
    for _ in range(3):
        await poll()
    (finding,) = findings
    assert (finding.reason, finding.severity, finding.fault_class) == (
        "GpuUnreachable", Severity.FATAL, FaultClass.HARDWARE,
    )  # fmt: skip
    assert finding.source == "gpu/relay" and UUIDS[0] in (finding.gpu or "")


async def until_snapshot(
    poll: Callable[[], Awaitable[Snapshot]], condition: Callable[[Snapshot], bool]
) -> Snapshot:
    deadline = time.monotonic() + 10.0
    while True:
        snapshot = await poll()
        if condition(snapshot):
            return snapshot
        assert time.monotonic() < deadline, f"no such snapshot; the last: {snapshot}"
        await asyncio.sleep(0.05)
