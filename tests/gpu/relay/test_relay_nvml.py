"""NVML read by the relay in the trainer's container means what NVML read here means: for
each state of the fake binding, the relay's raw values, given meaning by
`formats.relay_nvml`, equal the in-process NVML backend's readings and failures."""

from collections.abc import Callable
from dataclasses import replace

import pytest

from tests.gpu.fake_pynvml import FakeNvml, h100s
from watcher.gpu.backends.nvml import NvmlBackend
from watcher.gpu.formats.relay_nvml import parse_relay_nvml
from watcher.gpu.model import GpuReading, Snapshot, ToolFailure, ToolProblem
from watcher.launcher.gpu_read import Nvml

GPU_IS_LOST, RESET_REQUIRED, DRIVER_NOT_LOADED, NOT_SUPPORTED, UNKNOWN = 15, 16, 9, 3, 999


def healthy(nvml: FakeNvml) -> None:
    del nvml


def lost_handle(nvml: FakeNvml) -> None:
    nvml.gpus[1].failing = GPU_IS_LOST


def lost_value(nvml: FakeNvml) -> None:
    nvml.gpus[0].failing_fields["ecc"] = GPU_IS_LOST


def needs_reset(nvml: FakeNvml) -> None:
    nvml.gpus[0].failing_fields["remapped"] = RESET_REQUIRED


def remap_failed_ecc_and_recovery(nvml: FakeNvml) -> None:
    nvml.gpus[0].remapped = (1, 2, 1, 1)
    nvml.gpus[0].ecc = 3
    nvml.gpus[1].recovery = 2  # NODE_REBOOT
    nvml.gpus[1].reasons = 0x40  # HwThermalSlowdown


def old_driver(nvml: FakeNvml) -> None:
    nvml.gpus[0].recovery = None  # the field is not supported before 570
    nvml.gpus[0].failing_fields["reasons"] = NOT_SUPPORTED
    nvml.gpus[1].failing_fields["ecc"] = UNKNOWN


STATES: dict[str, Callable[[FakeNvml], None]] = {
    f.__name__: f
    for f in (healthy, lost_handle, lost_value, needs_reset, remap_failed_ecc_and_recovery,
              old_driver)
}  # fmt: skip


def relayed(nvml: FakeNvml) -> Snapshot:
    reader = Nvml(nvml)
    return parse_relay_nvml(reader.read(2.0))


async def here(nvml: FakeNvml) -> Snapshot:
    backend = NvmlBackend(nvml, None, 2.0)
    try:
        return await backend.poll()
    finally:
        await backend.close()


def comparable(reading: GpuReading) -> GpuReading:
    """Odd fields name the call differently on each side; that there is one is the same."""
    return replace(reading, odd_fields=("odd",) if reading.odd_fields else ())


@pytest.mark.parametrize("state", list(STATES))
async def test_the_relay_s_nvml_readings_mean_what_nvml_here_means(state: str) -> None:
    nvml = FakeNvml(h100s(2))
    nvml.nvmlInit()
    STATES[state](nvml)
    ours, theirs = await here(nvml), relayed(nvml)
    assert [comparable(r) for r in theirs.readings] == [comparable(r) for r in ours.readings]
    assert [f.problem for f in theirs.failures] == [f.problem for f in ours.failures]


def test_nvml_gone_is_driver_not_loaded_and_nvml_is_opened_again() -> None:
    nvml = FakeNvml(h100s(2))
    nvml.nvmlInit()
    reader = Nvml(nvml)
    nvml.driver_error = DRIVER_NOT_LOADED
    snapshot = parse_relay_nvml(reader.read(2.0))
    assert [f.problem for f in snapshot.failures] == [ToolProblem.DRIVER_NOT_LOADED] * 2
    assert reader.reinit
    nvml.driver_error = None
    inits = nvml.inits
    assert len(parse_relay_nvml(reader.read(2.0)).readings) == 2
    assert nvml.inits == inits + 1 and not reader.reinit


def test_a_blocked_nvml_read_is_reported_and_not_repeated() -> None:
    nvml = FakeNvml(h100s(1))
    nvml.nvmlInit()
    release = nvml.hang(nvml.gpus[0])
    reader = Nvml(nvml)
    try:
        first = parse_relay_nvml(reader.read(0.1))
        calls = nvml.gpus[0].calls
        second = parse_relay_nvml(reader.read(0.1))
        assert nvml.gpus[0].calls == calls  # the blocked read is not started again
    finally:
        release.set()
    assert first.failures == (
        ToolFailure(
            ToolProblem.TIMED_OUT,
            "NVML in the trainer's container did not answer within the deadline",
        ),
    )
    assert "still blocked" in second.failures[0].detail
