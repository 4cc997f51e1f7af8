"""The GPU monitor: polls on its interval, reports each condition once, survives any
backend, and turns every NVML Xid event into a finding of its own."""

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from tests.gpu.fake_pynvml import FakeNvml, h100s
from tests.waiting import until
from watcher.clock import SystemClock
from watcher.gpu.backends.nvml import NvmlBackend
from watcher.gpu.model import GpuId, GpuReading, Snapshot, ToolFailure, ToolProblem
from watcher.gpu.monitor import MIN_GAP, GpuMonitor
from watcher.gpu.select import OurGpus
from watcher.types import FaultClass, Finding, Severity

GPU = GpuId(uuid="GPU-1111", bus_id="0000:18:00", index=0)
HEALTHY = Snapshot("fake", (GpuReading(GPU, name="H100", ecc_uncorrected_volatile=0),))
RESET = Snapshot("fake", (replace(HEALTHY.readings[0], reset_required=True),))


class ScriptedBackend:
    """Answers each poll from a script, then with ``default``; can raise or hang."""

    name = "fake"

    def __init__(self, *script: Snapshot, default: Snapshot = HEALTHY) -> None:
        self.script = deque(script)
        self.default = default
        self.error: Exception | None = None
        self.hang: asyncio.Event | None = None
        self.polls = 0
        self.closed = False

    async def poll(self) -> Snapshot:
        self.polls += 1
        if self.hang is not None:
            await self.hang.wait()
        if self.error is not None:
            raise self.error
        return self.script.popleft() if self.script else self.default

    async def close(self) -> None:
        self.closed = True

    def status(self) -> dict[str, Any]:
        return {"script_left": len(self.script)}


@asynccontextmanager
async def running(monitor: GpuMonitor) -> AsyncIterator[list[Finding]]:
    findings: list[Finding] = []
    task = asyncio.create_task(monitor.run(findings.append), name="gpu")
    try:
        yield findings
    finally:
        task.cancel()
        await asyncio.wait([task], timeout=2)
        assert task.done()


def monitor_of(backend: object, interval: float = 0.01, **kwargs: object) -> GpuMonitor:
    return GpuMonitor(backend, interval=interval, timeout=0.5, clock=SystemClock(), **kwargs)  # type: ignore[arg-type]


def reasons(findings: list[Finding]) -> list[str]:
    return [f.reason for f in findings]


async def test_a_condition_is_reported_once_however_many_polls_see_it() -> None:
    backend = ScriptedBackend(HEALTHY, default=RESET)
    monitor = monitor_of(backend)
    async with running(monitor) as findings:
        await until(lambda: backend.polls >= 5)
    assert reasons(findings) == ["GpuResetRequired"]
    (finding,) = findings
    assert (finding.source, finding.severity, finding.fault_class) == (
        "gpu/fake",
        Severity.FATAL,
        FaultClass.HARDWARE,
    )
    assert backend.closed


async def test_it_sleeps_between_polls() -> None:
    backend = ScriptedBackend()
    async with running(monitor_of(backend, interval=0.2)):
        await until(lambda: backend.polls >= 2)
        polls = backend.polls
        await asyncio.sleep(0.1)  # a duration under test, not a synchronisation
        assert backend.polls <= polls + 1


async def test_ready_comes_after_the_first_poll() -> None:
    backend = ScriptedBackend()
    backend.hang = asyncio.Event()
    monitor = monitor_of(backend)
    async with running(monitor):
        await until(lambda: backend.polls == 1)
        assert not monitor.ready.is_set()
        backend.hang.set()
        await asyncio.wait_for(monitor.ready.wait(), 2)


async def test_a_backend_that_raises_is_a_tool_failure_and_polling_goes_on() -> None:
    backend = ScriptedBackend()
    backend.error = RuntimeError("NVML went sideways")
    monitor = monitor_of(backend)
    assert not monitor.up()  # no look yet
    async with running(monitor) as findings:
        await until(lambda: monitor.stats.polls >= 3)
        assert monitor.healthy() == (True, "fake: 0 GPUs, failing: failed")
        assert not monitor.up() and monitor.status()["up"] is False
        backend.error = None
        await until(lambda: monitor.stats.polls >= 5)
        assert monitor.up() and monitor.status()["up"] is True
    assert reasons(findings) == ["GpuToolFailed"]
    assert "RuntimeError: NVML went sideways" in findings[0].evidence[0]
    assert monitor.counters()["poll_failures"] >= 3


async def test_a_backend_that_overruns_its_deadline_is_cut_off() -> None:
    backend = ScriptedBackend()
    backend.hang = asyncio.Event()  # never set: the poll hangs until cancelled
    monitor = monitor_of(backend, guard=0.05)
    async with running(monitor) as findings:
        await until(lambda: monitor.stats.polls >= 2)
    assert reasons(findings) == ["GpuToolTimedOut"]
    assert monitor.ready.is_set()


async def test_status_and_counters_describe_the_last_poll() -> None:
    failing = Snapshot(
        "fake", HEALTHY.readings, (ToolFailure(ToolProblem.TIMED_OUT, "too slow", GPU),)
    )
    backend = ScriptedBackend(default=failing)
    monitor = monitor_of(backend, why="because")
    async with running(monitor):
        await until(lambda: monitor.stats.polls >= 2)
    status = monitor.status()
    assert (status["backend"], status["why"], status["interval_s"]) == ("fake", "because", 0.01)
    assert status["polls"] >= 2
    assert status["tool"] == {"script_left": 0}
    assert status["gpus"] == {
        "GPU-1111 0000:18:00": {
            "name": "H100",
            "lost": False,
            "reset_required": False,
            "ecc_uncorrected_volatile": 0,
        }
    }
    assert status["failures"] == [
        {"problem": "timed_out", "detail": "too slow", "gpu": "GPU-1111 0000:18:00"}
    ]
    assert status["last_poll_age_s"] >= 0 and status["last_poll_duration_s"] >= 0
    counters = monitor.counters()
    assert set(counters) == {"polls", "poll_failures", "poll_seconds", "xid_events"}
    assert counters["polls"] == counters["poll_failures"] >= 2


async def test_other_pods_gpus_are_left_out() -> None:
    theirs = GpuReading(GpuId(uuid="GPU-2222", bus_id="0000:2a:00"), reset_required=True)
    backend = ScriptedBackend(default=Snapshot("fake", (*HEALTHY.readings, theirs)))
    monitor = monitor_of(backend, keep=OurGpus(("GPU-1111",)))
    async with running(monitor) as findings:
        await until(lambda: monitor.stats.polls >= 2)
    assert findings == []
    assert list(monitor.status()["gpus"]) == ["GPU-1111 0000:18:00"]


def _kernel_line(bus_id: str, *context: str) -> Finding:
    line = f"NVRM: Xid (PCI:{bus_id}): 79, pid=2024380, name=python, GPU has fallen off the bus."
    return Finding(
        "log", "XidGpuFallenOffBus", Severity.FATAL, FaultClass.HARDWARE, "", 0.0,
        evidence=(line, *context),
    )  # fmt: skip


async def test_a_kernel_line_names_another_pods_gpu_only_once_the_polls_tell() -> None:
    theirs = GpuReading(GpuId(uuid="GPU-2222", bus_id="0000:2a:00"))
    backend = ScriptedBackend(default=Snapshot("fake", (*HEALTHY.readings, theirs)))
    monitor = monitor_of(backend, keep=OurGpus(("GPU-1111",)))
    assert monitor.foreign_gpu(_kernel_line("0000:2a:00")) is None  # no poll yet: cannot tell
    async with running(monitor):
        await until(lambda: monitor.stats.polls >= 1)
    assert monitor.foreign_gpu(_kernel_line("0000:2a:00")) == "0000:2a:00"
    assert monitor.foreign_gpu(_kernel_line("0000:18:00")) is None  # ours
    # only the matched line (the first) says which GPU; context after it does not
    later = _kernel_line("0000:18:00", "NVRM: GPU at PCI:0000:2a:00: GPU-2222")
    assert monitor.foreign_gpu(later) is None
    assert monitor.foreign_gpu(replace(later, evidence=())) is None


async def test_each_xid_event_is_a_finding_and_brings_a_poll_forward() -> None:
    nvml = FakeNvml(h100s(3))
    gpus = nvml.gpus
    backend = NvmlBackend(nvml, None, 0.5, event_wait_ms=20)
    monitor = monitor_of(backend, interval=60.0, keep=OurGpus((gpus[0].uuid, gpus[1].uuid)))
    async with running(monitor) as findings:
        await asyncio.wait_for(monitor.ready.wait(), 5)
        await until(lambda: backend.events is not None and len(backend.events.registered) == 3)
        for gpu, xid in ((gpus[1], 48), (gpus[1], 48), (gpus[2], 79), (gpus[0], 13)):
            nvml.xid(gpu, xid)
        await until(lambda: len(findings) >= 3)
        await until(lambda: monitor.stats.polls >= 2, MIN_GAP + 3)  # the interval is 60 s
    seen = [(f.reason, f.severity, f.fault_class, f.gpu) for f in findings]
    first, second = GpuId(gpus[0].uuid, "0000:18:00").label(), f"{gpus[1].uuid} 0000:28:00"
    assert seen == [
        ("XidUncorrectableMemoryError", Severity.FATAL, FaultClass.HARDWARE, second),
        ("XidUncorrectableMemoryError", Severity.FATAL, FaultClass.HARDWARE, second),
        ("XidApplicationFault", Severity.WARNING, FaultClass.APPLICATION, first),
    ]
    assert findings[0].source == "gpu/nvml"
    assert monitor.counters()["xid_events"] == 3
    assert monitor.status()["tool"]["events"]["watching"] is False  # closed with the monitor
    assert nvml.shutdowns == 1


async def test_cancelling_closes_the_backend() -> None:
    backend = ScriptedBackend()
    async with running(monitor_of(backend)):
        await until(lambda: backend.polls >= 1)
    assert backend.closed
