"""The NVML backend with a fake pynvml: readings, NVML's errors, hung calls, Xid events."""

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable

import pytest

from tests.gpu.fake_pynvml import FakeGpu, FakeNvml, h100s
from tests.waiting import until
from watcher.gpu.backends.nvml import NvmlBackend
from watcher.gpu.classification.classifier import GpuClassifier
from watcher.gpu.model import GpuReading, Recovery, Snapshot, ToolProblem

TIMEOUT = 0.5


@pytest.fixture
def gpus() -> list[FakeGpu]:
    return h100s(4)


@pytest.fixture
def nvml(gpus: list[FakeGpu]) -> FakeNvml:
    return FakeNvml(gpus)


@pytest.fixture
async def backend(nvml: FakeNvml, gpus: list[FakeGpu]) -> AsyncIterator[NvmlBackend]:
    backend = NvmlBackend(nvml, [gpus[0].uuid, gpus[1].uuid], TIMEOUT, event_wait_ms=20)
    yield backend
    for gpu in gpus:
        if gpu.hung is not None:
            gpu.hung.set()
    await backend.close()


def by_uuid(snapshot: Snapshot) -> dict[str | None, GpuReading]:
    return {r.gpu.uuid: r for r in snapshot.readings}


async def test_reads_only_our_gpus_with_every_field(
    backend: NvmlBackend, gpus: list[FakeGpu]
) -> None:
    snapshot = await backend.poll()
    assert snapshot.failures == ()
    assert list(by_uuid(snapshot)) == [gpus[0].uuid, gpus[1].uuid]
    first = snapshot.readings[0]
    assert first.gpu.bus_id == "0000:18:00"
    assert first.name == "NVIDIA H100 80GB HBM3"
    assert (first.ecc_uncorrected_volatile, first.remapped_rows_pending) == (0, False)
    assert (first.remapped_rows_failure, first.retired_pages_pending) == (False, None)
    assert (first.recovery_action, first.thermal_slowdown) == (Recovery.NONE, False)
    assert gpus[2].calls == gpus[3].calls == 0
    assert GpuClassifier().classify(snapshot, 1.0) == []


async def test_without_uuids_every_visible_gpu_is_read(nvml: FakeNvml) -> None:
    backend = NvmlBackend(nvml, None, TIMEOUT)
    snapshot = await backend.poll()
    assert [r.gpu.index for r in snapshot.readings] == [0, 1, 2, 3]
    await backend.close()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"ecc": 2}, {"ecc_uncorrected_volatile": 2}),
        ({"remapped": (0, 1, 1, 0)}, {"remapped_rows_pending": True}),
        ({"remapped": (0, 9, 0, 1)}, {"remapped_rows_failure": True}),
        ({"retired_pending": 1}, {"retired_pages_pending": True}),
        ({"recovery": 1}, {"recovery_action": Recovery.GPU_RESET}),
        ({"recovery": 2}, {"recovery_action": Recovery.NODE_REBOOT}),
        ({"recovery": 3}, {"recovery_action": Recovery.DRAIN_P2P}),
        ({"recovery": 4}, {"recovery_action": Recovery.DRAIN_AND_RESET}),
        ({"recovery": 7}, {"recovery_action": Recovery.OTHER}),
        ({"recovery": None}, {"recovery_action": None}),
        ({"reasons": 0x40}, {"thermal_slowdown": True}),
        ({"reasons": 0x20 | 0x1}, {"thermal_slowdown": True}),
        ({"reasons": 0x8 | 0x4}, {"thermal_slowdown": False}),
        ({"failing": 15}, {"lost": True}),
        ({"failing": 16}, {"reset_required": True}),
        ({"failing_fields": {"ecc": 3}}, {"ecc_uncorrected_volatile": None}),
        ({"failing_fields": {"ecc": 999}}, {"odd_fields": ("ecc (Unknown Error)",)}),
    ],
)
async def test_each_state_of_a_gpu_is_read(
    backend: NvmlBackend,
    gpus: list[FakeGpu],
    change: dict[str, object],
    expected: dict[str, object],
) -> None:
    await backend.poll()  # handles first: a lost or reset GPU fails every later call
    for name, value in change.items():
        setattr(gpus[1], name, value)
    snapshot = await backend.poll()
    assert snapshot.failures == ()
    reading = by_uuid(snapshot)[gpus[1].uuid]
    for name, value in expected.items():
        assert getattr(reading, name) == value, name


async def test_a_binding_without_the_recovery_field_reads_no_recovery_action(
    nvml: FakeNvml, gpus: list[FakeGpu]
) -> None:
    class OldBinding(FakeNvml):
        NVML_FI_DEV_GET_GPU_RECOVERY_ACTION = property()

    old = OldBinding(gpus)
    backend = NvmlBackend(old, [gpus[0].uuid], TIMEOUT)
    gpus[0].recovery = 1
    (reading,) = (await backend.poll()).readings
    assert reading.recovery_action is None
    await backend.close()


async def test_a_lost_gpu_is_a_fatal_hardware_finding(
    backend: NvmlBackend, gpus: list[FakeGpu]
) -> None:
    classifier = GpuClassifier()
    assert classifier.classify(await backend.poll(), 1.0) == []
    gpus[0].failing = 15
    (finding,) = classifier.classify(await backend.poll(), 2.0)
    assert (finding.reason, finding.fault_class.value) == ("GpuLost", "hardware")


async def test_a_gpu_lost_before_its_handle_is_read_is_lost(
    backend: NvmlBackend, gpus: list[FakeGpu]
) -> None:
    gpus[1].failing = 15  # nvmlDeviceGetHandleByUUID raises GpuIsLost
    snapshot = await backend.poll()
    assert by_uuid(snapshot)[gpus[1].uuid].lost
    assert not by_uuid(snapshot)[gpus[0].uuid].lost


async def test_a_uuid_nvml_does_not_know_is_reported_not_visible(nvml: FakeNvml) -> None:
    backend = NvmlBackend(nvml, ["GPU-not-here"], TIMEOUT)
    snapshot = await backend.poll()
    (failure,) = snapshot.failures
    assert failure.problem is ToolProblem.NO_DEVICES
    assert failure.gpu is not None and failure.gpu.uuid == "GPU-not-here"
    await backend.close()


async def test_a_hung_gpu_times_out_and_is_not_asked_again_until_it_answers(
    backend: NvmlBackend, nvml: FakeNvml, gpus: list[FakeGpu]
) -> None:
    await backend.poll()
    release = nvml.hang(gpus[0])
    started = time.monotonic()
    snapshot = await backend.poll()
    assert time.monotonic() - started < TIMEOUT + 1.0
    (failure,) = snapshot.failures
    assert failure.problem is ToolProblem.TIMED_OUT
    assert failure.gpu is not None and failure.gpu.uuid == gpus[0].uuid
    assert gpus[1].uuid in by_uuid(snapshot)  # the other GPU still reads
    calls = gpus[0].calls
    snapshot = await backend.poll()
    assert "still blocked" in snapshot.failures[0].detail
    assert gpus[0].calls == calls  # no second thread piled on the hung one
    release.set()
    gpus[0].hung = None
    await poll_until(backend, lambda snapshot: not snapshot.failures)


async def poll_until(
    backend: NvmlBackend, condition: Callable[[Snapshot], bool], limit: float = 5.0
) -> Snapshot:
    """Poll until a snapshot meets ``condition`` (the hung thread returns on its own)."""
    async with asyncio.timeout(limit):
        while not condition(snapshot := await backend.poll()):  # noqa: ASYNC110 - no event
            await asyncio.sleep(0.01)
    return snapshot


@pytest.mark.parametrize(
    ("code", "problem"),
    [
        (12, ToolProblem.LIBRARY_NOT_FOUND),
        (9, ToolProblem.DRIVER_NOT_LOADED),
        (18, ToolProblem.VERSION_MISMATCH),
        (999, ToolProblem.FAILED),
    ],
)
async def test_nvml_that_cannot_start_is_a_tool_failure_and_is_tried_again(
    backend: NvmlBackend, nvml: FakeNvml, code: int, problem: ToolProblem
) -> None:
    nvml.init_error = code
    snapshot = await backend.poll()
    assert [f.problem for f in snapshot.failures] == [problem]
    assert snapshot.readings == ()
    nvml.init_error = None
    assert len((await backend.poll()).readings) == 2
    assert nvml.inits == 1


async def test_a_driver_that_goes_away_makes_nvml_start_again(
    backend: NvmlBackend, nvml: FakeNvml
) -> None:
    await backend.poll()
    nvml.driver_error = 9
    snapshot = await backend.poll()
    assert {f.problem for f in snapshot.failures} == {ToolProblem.DRIVER_NOT_LOADED}
    nvml.driver_error = None
    assert len((await backend.poll()).readings) == 2
    assert nvml.inits == 2


async def test_a_hung_nvml_init_times_out_once(backend: NvmlBackend, nvml: FakeNvml) -> None:
    nvml.init_hung = release = threading.Event()
    assert [f.problem for f in (await backend.poll()).failures] == [ToolProblem.TIMED_OUT]
    snapshot = await backend.poll()
    assert "still blocked" in snapshot.failures[0].detail
    nvml.init_hung = None
    release.set()
    snapshot = await poll_until(backend, lambda snapshot: len(snapshot.readings) == 2)
    assert nvml.inits == 1


class Events:
    """What the backend delivers to the loop."""

    def __init__(self) -> None:
        self.got: list[GpuReading | None] = []

    def __call__(self, reading: GpuReading | None) -> None:
        self.got.append(reading)

    async def wait(self, count: int) -> list[GpuReading | None]:
        await until(lambda: len(self.got) >= count)
        return self.got


async def listening(backend: NvmlBackend, events: Events) -> None:
    backend.listen(events)
    await backend.poll()  # opens the GPUs, then the watcher registers them
    await until(lambda: backend.events is not None and len(backend.events.registered) == 2)


async def test_every_xid_event_arrives_two_equal_ones_included(
    backend: NvmlBackend, nvml: FakeNvml, gpus: list[FakeGpu]
) -> None:
    events = Events()
    await listening(backend, events)
    assert nvml.registered == [f"{gpus[0].uuid} 0xa", f"{gpus[1].uuid} 0xa"]
    nvml.xid(gpus[1], 48)
    nvml.xid(gpus[1], 48)
    nvml.xid(gpus[3], 79)  # not ours: dropped
    nvml.dbe(gpus[0])
    got = await events.wait(3)
    assert [(r.gpu.uuid, r.xid) for r in got if r is not None] == [
        (gpus[1].uuid, 48),
        (gpus[1].uuid, 48),
        (gpus[0].uuid, None),
    ]
    assert backend.events is not None and backend.events.delivered == 3


async def test_a_gpu_without_event_support_is_polled_but_not_watched(
    backend: NvmlBackend, nvml: FakeNvml, gpus: list[FakeGpu]
) -> None:
    gpus[0].events = 0
    backend.listen(Events())
    await backend.poll()
    await until(lambda: backend.events is not None and backend.events.registered)
    assert nvml.registered == [f"{gpus[1].uuid} 0xa"]


async def test_a_broken_event_wait_stops_watching_and_asks_for_a_poll(
    backend: NvmlBackend, nvml: FakeNvml
) -> None:
    nvml.wait_error = 15
    events = Events()
    backend.listen(events)
    await backend.poll()
    assert await events.wait(1) == [None]
    assert backend.events is not None and "GPU is lost" in (backend.events.error or "")
    await until(lambda: backend.events is not None and not backend.events.alive())
    assert nvml.event_sets_freed == 1


async def test_close_stops_the_watcher_frees_the_set_and_shuts_nvml_down(
    backend: NvmlBackend, nvml: FakeNvml
) -> None:
    await listening(backend, Events())
    await backend.close()
    assert backend.events is not None and not backend.events.alive()
    assert (nvml.event_sets_freed, nvml.shutdowns) == (1, 1)
