"""Which backend runs and which GPUs are ours: the settings, `auto`, the wiring."""

import logging
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.gpu.fake_pynvml import FakeNvml, h100s
from watcher.clock import SystemClock
from watcher.config.load import ConfigError, load_config
from watcher.config.settings import WatcherSettings
from watcher.gpu.backends.dcgm import DcgmBackend
from watcher.gpu.backends.nvml import NvmlBackend
from watcher.gpu.backends.smi import SmiBackend
from watcher.gpu.model import GpuId, GpuReading, Snapshot, ToolProblem
from watcher.gpu.monitor import GpuMonitor
from watcher.gpu.select import OurGpus, choose, nvml_works, our_uuids
from watcher.logs.files import OpenPolicy
from watcher.monitors import build_monitors

A, B = "GPU-aaaa-0001", "GPU-bbbb-0002"


def settings(**values: Any) -> WatcherSettings:
    return WatcherSettings(state_dir=Path("/tmp/state"), log_paths=("/tmp/*.log",), **values)


def importer(module: object | None) -> Any:
    def import_module(name: str) -> ModuleType:
        assert name == "pynvml"
        if module is None:
            raise ModuleNotFoundError("No module named 'pynvml'")
        return module  # type: ignore[return-value]

    return import_module


def which(found: dict[str, str]) -> Any:
    return found.get


@pytest.mark.parametrize(
    ("configured", "visible", "expected"),
    [
        ((A,), f"{B}", (A,)),
        ((), f"{A},{B}", (A, B)),
        ((), f" {A} , {B} ", (A, B)),
        ((), "all", None),
        ((), "void", None),
        ((), "none", None),
        ((), "0,1", None),
        ((), "MIG-1234-5678", None),
        ((), f"{A},0", None),
        ((), "", None),
    ],
)
def test_our_gpus_come_from_the_setting_then_nvidia_visible_devices(
    configured: tuple[str, ...], visible: str, expected: tuple[str, ...] | None
) -> None:
    assert our_uuids(configured, {"NVIDIA_VISIBLE_DEVICES": visible}) == expected


def test_gpu_uuids_is_a_comma_list_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHER_GPU_UUIDS", f"{A}, {B}")
    assert settings().gpu_uuids == (A, B)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WATCHER_GPU": "dcgm"}, "needs WATCHER_DCGM_EXPORTER_URL"),
        ({"WATCHER_DCGM_EXPORTER_URL": "node:9400/metrics"}, "not an http:// or https:// URL"),
        ({"WATCHER_GPU_POLL_INTERVAL": "0"}, "WATCHER_GPU_POLL_INTERVAL"),
        ({"WATCHER_GPU_TIMEOUT": "-1"}, "WATCHER_GPU_TIMEOUT"),
    ],
)
def test_bad_gpu_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], message: str
) -> None:
    for name, value in {"WATCHER_STATE_DIR": str(tmp_path), **env}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WATCHER_LOG_PATHS", str(tmp_path / "*.log"))
    with pytest.raises(ConfigError, match=message):
        load_config()


@pytest.mark.parametrize("backend", ["nvml", "nvidia-smi", "dcgm", "auto", "off"])
def test_every_backend_name_is_accepted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, backend: str
) -> None:
    monkeypatch.setenv("WATCHER_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("WATCHER_LOG_PATHS", str(tmp_path / "*.log"))
    monkeypatch.setenv("WATCHER_GPU", backend)
    monkeypatch.setenv("WATCHER_DCGM_EXPORTER_URL", "http://10.0.0.7:9400/metrics")
    assert load_config().settings.gpu == backend


def test_auto_takes_nvml_when_it_works(caplog: pytest.LogCaptureFixture) -> None:
    nvml = FakeNvml(h100s(1))
    with caplog.at_level(logging.INFO, "watcher.gpu.select"):
        choice = choose(settings(), {}, import_module=importer(nvml), which=which({}))
    assert isinstance(choice.backend, NvmlBackend)
    assert choice.why == "nvml: pynvml loads and nvmlInit works"
    assert (nvml.inits, nvml.shutdowns) == (1, 1)  # tried, and left as it was
    (record,) = caplog.records
    assert record.getMessage() == f"gpu monitor: {choice.why}"


def test_auto_falls_back_to_nvidia_smi_and_says_why() -> None:
    nvml = FakeNvml(h100s(1))
    nvml.init_error = 9
    found = which({"nvidia-smi": "/usr/bin/nvidia-smi"})
    choice = choose(settings(), {}, import_module=importer(nvml), which=found)
    assert isinstance(choice.backend, SmiBackend)
    assert choice.backend.command == "/usr/bin/nvidia-smi"
    assert choice.why == "nvidia-smi at /usr/bin/nvidia-smi (nvmlInit failed: Driver Not Loaded)"


def test_auto_is_off_without_pynvml_and_nvidia_smi() -> None:
    choice = choose(settings(), {}, import_module=importer(None), which=which({}))
    assert choice.backend is None
    assert choice.why.startswith("off: pynvml does not import (No module named 'pynvml'")
    assert choice.why.endswith("and nvidia-smi is not on PATH")


def test_auto_uses_the_configured_nvidia_smi_name() -> None:
    found = which({"/opt/nvidia/bin/nvidia-smi": "/opt/nvidia/bin/nvidia-smi"})
    choice = choose(
        settings(nvidia_smi="/opt/nvidia/bin/nvidia-smi"),
        {},
        import_module=importer(None),
        which=found,
    )
    assert isinstance(choice.backend, SmiBackend)


def test_a_hanging_nvml_init_does_not_hold_the_start() -> None:
    nvml = FakeNvml(h100s(1))
    nvml.init_hung = release = threading.Event()
    try:
        assert nvml_works(nvml, 0.1) == "nvmlInit did not return within 0.1s"
    finally:
        release.set()


def test_explicit_backends() -> None:
    nothing = importer(None)
    smi = choose(settings(gpu="nvidia-smi", nvidia_smi="/x/smi"), {}, import_module=nothing)
    assert isinstance(smi.backend, SmiBackend) and smi.backend.command == "/x/smi"
    nvml = choose(settings(gpu="nvml"), {}, import_module=nothing)
    assert nvml.backend is None and nvml.why.startswith("off: WATCHER_GPU=nvml but pynvml")
    nvml = choose(settings(gpu="nvml"), {}, import_module=importer(FakeNvml([])))
    assert isinstance(nvml.backend, NvmlBackend)
    assert choose(settings(gpu="off"), {}).backend is None
    dcgm = choose(
        settings(gpu="dcgm", dcgm_exporter_url="http://10.0.0.7:9400/metrics", pod_name="p"),
        {"NVIDIA_VISIBLE_DEVICES": A},
        which=which({"dcgmi": "/usr/bin/dcgmi"}),
    )
    assert isinstance(dcgm.backend, DcgmBackend)
    assert dcgm.backend.url == "http://10.0.0.7:9400/metrics"
    assert dcgm.backend.dcgmi == "/usr/bin/dcgmi"


def test_the_monitor_is_wired_only_when_a_backend_was_chosen(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WATCHER_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("WATCHER_LOG_PATHS", str(tmp_path / "*.log"))
    monkeypatch.setenv("WATCHER_GPU", "nvidia-smi")
    monkeypatch.setenv("WATCHER_GPU_POLL_INTERVAL", "3")
    config = load_config()
    built = build_monitors(config, OpenPolicy(True, {}), SystemClock(), None, {})
    (gpu,) = [m for m in built.all if isinstance(m, GpuMonitor)]
    assert gpu.name == "gpu" and isinstance(gpu.backend, SmiBackend)
    assert gpu.status()["interval_s"] == 3.0
    monkeypatch.setenv("WATCHER_GPU", "off")
    built = build_monitors(load_config(), OpenPolicy(True, {}), SystemClock(), None, {})
    assert not [m for m in built.all if isinstance(m, GpuMonitor)]


def reading(uuid: str | None, bus: str, lost: bool = False) -> GpuReading:
    return GpuReading(GpuId(uuid=uuid, bus_id=bus), lost=lost)


def test_our_gpus_keeps_ours_and_drops_theirs() -> None:
    ours = OurGpus((A,))
    kept = ours.keep(Snapshot("s", (reading(A, "0000:18:00"), reading(B, "0000:2a:00"))))
    assert [r.gpu.uuid for r in kept.readings] == [A]
    assert kept.failures == ()
    assert OurGpus(None).keep(Snapshot("s", (reading(B, "x"),))).readings[0].gpu.uuid == B


def test_a_lost_gpu_known_only_by_bus_id_is_ours_if_its_bus_was() -> None:
    ours = OurGpus((A,))
    ours.keep(Snapshot("s", (reading(A, "0000:18:00"), reading(B, "0000:2a:00"))))
    lost_ours = ours.keep(Snapshot("s", (reading(None, "0000:18:00", lost=True),)))
    assert [r.gpu.bus_id for r in lost_ours.readings] == ["0000:18:00"]
    lost_theirs = ours.keep(
        Snapshot("s", (reading(A, "0000:18:00"), reading(None, "0000:2a:00", lost=True)))
    )
    assert [r.gpu.uuid for r in lost_theirs.readings] == [A]


def test_an_unknown_lost_gpu_is_kept_while_one_of_ours_is_missing() -> None:
    ours = OurGpus((A, B))
    kept = ours.keep(
        Snapshot("s", (reading(A, "0000:18:00"), reading(None, "0000:2a:00", lost=True)))
    )
    assert [r.gpu.bus_id for r in kept.readings] == ["0000:18:00", "0000:2a:00"]
    assert kept.failures == ()


def test_a_gpu_of_ours_the_tool_does_not_list_is_reported() -> None:
    kept = OurGpus((A, B)).keep(Snapshot("s", (reading(A, "0000:18:00"),)))
    (failure,) = kept.failures
    assert failure.problem is ToolProblem.NO_DEVICES
    assert failure.detail == f"{B}: not among the GPUs s sees"


def test_which_bus_ids_are_ours_once_every_one_of_ours_was_seen() -> None:
    ours = OurGpus((A,))
    assert ours.owns("0000:18:00") is None  # no poll yet
    ours.keep(Snapshot("s", (reading(A, "0000:18:00"), reading(B, "0000:2a:00"))))
    assert ours.owns("00000000:18:00.0") is True  # nvidia-smi's spelling of the same GPU
    assert ours.owns("0000:2a:00") is False
    assert ours.owns("0000:9b:00") is False  # a GPU this container cannot even see
    ours.keep(Snapshot("s", (reading(None, "0000:18:00", lost=True),)))
    assert ours.owns("0000:18:00") is True  # lost since, still ours


def test_while_one_of_ours_was_never_seen_no_bus_id_is_called_theirs() -> None:
    ours = OurGpus((A, B))
    ours.keep(Snapshot("s", (reading(A, "0000:18:00"),)))
    assert ours.owns("0000:18:00") is True
    assert ours.owns("0000:9b:00") is None


def test_a_gpu_listed_without_a_bus_id_leaves_unknown_bus_ids_undecided() -> None:
    ours = OurGpus(None)
    ours.keep(Snapshot("s", (reading(A, "0000:18:00"),)))
    assert (ours.owns("0000:18:00"), ours.owns("0000:9b:00")) == (True, False)
    lost_by_index = GpuReading(GpuId(index=1), lost=True)
    ours.keep(Snapshot("s", (reading(A, "0000:18:00"), lost_by_index)))
    assert ours.owns("0000:9b:00") is None
    ours.keep(Snapshot("s", ()))  # a failed poll lists nothing
    assert ours.owns("0000:9b:00") is None
    assert ours.owns("0000:18:00") is True


def test_an_xid_event_asks_about_its_gpu_without_teaching_what_the_polls_know() -> None:
    ours = OurGpus((A,))
    lost_by_index = GpuReading(GpuId(index=1), lost=True)
    ours.keep(Snapshot("s", (reading(A, "0000:18:00"), lost_by_index)))
    assert ours.owns("0000:9b:00") is None  # the lost GPU could be at that bus
    assert ours.admits(GpuReading(GpuId(uuid=A, bus_id="0000:18:00"), xid=79)) is True
    assert ours.admits(GpuReading(GpuId(uuid=B, bus_id="0000:2a:00"), xid=79)) is False
    assert ours.owns("0000:9b:00") is None  # one event of ours says nothing of the others
