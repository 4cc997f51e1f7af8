"""Which backend runs and which GPUs are ours: the settings, `auto`, the wiring."""

import logging
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.gpu.fake_pynvml import FakeNvml, h100s
from tests.gpu.fake_smi import SCRIPT
from watcher.clock import SystemClock
from watcher.config.load import ConfigError, load_config
from watcher.config.settings import WatcherSettings
from watcher.gpu.backends.dcgm import DcgmBackend
from watcher.gpu.backends.nvml import NvmlBackend
from watcher.gpu.backends.relay import RelayBackend, RelayUuids
from watcher.gpu.backends.smi import SmiBackend
from watcher.gpu.backends.unavailable import Unavailable
from watcher.gpu.monitor import GpuMonitor
from watcher.gpu.select import choose, evident_gpus, nvml_works
from watcher.logs.files import OpenPolicy
from watcher.monitor_setup import build_monitors

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


@pytest.mark.parametrize("backend", ["nvml", "nvidia-smi", "dcgm", "relay", "auto", "off"])
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


def no_devices() -> list[str]:
    return []


def test_auto_is_off_without_pynvml_and_nvidia_smi_on_a_pod_without_gpus(
    caplog: pytest.LogCaptureFixture,
) -> None:
    environ = {"NVIDIA_VISIBLE_DEVICES": "void"}
    with caplog.at_level(logging.INFO, "watcher.gpu.select"):
        choice = choose(
            settings(), environ, import_module=importer(None), which=which({}), devices=no_devices
        )
    assert choice.backend is None
    assert choice.why.startswith("off: pynvml does not import (No module named 'pynvml'")
    assert choice.why.endswith("and nvidia-smi is not on PATH")
    assert [r.levelno for r in caplog.records] == [logging.INFO]


@pytest.mark.parametrize(
    ("values", "environ", "devices", "evidence"),
    [
        ({}, {"NVIDIA_VISIBLE_DEVICES": f"{A},{B}"}, [], f"NVIDIA_VISIBLE_DEVICES={A},{B}"),
        ({}, {"NVIDIA_VISIBLE_DEVICES": "0,1"}, [], "NVIDIA_VISIBLE_DEVICES=0,1"),
        ({}, {"NVIDIA_VISIBLE_DEVICES": "all"}, [], "NVIDIA_VISIBLE_DEVICES=all"),
        (  # a DRA claim or CDI: the variable says void, the device nodes are there
            {}, {"NVIDIA_VISIBLE_DEVICES": "void"}, ["/dev/nvidia0", "/dev/nvidia1"],
            "/dev/nvidia0, /dev/nvidia1 in this container",
        ),
        ({"gpu_uuids": (A,)}, {}, [], f"WATCHER_GPU_UUIDS={A}"),
        ({}, {"NVIDIA_VISIBLE_DEVICES": "void"}, [], None),
        ({}, {"NVIDIA_VISIBLE_DEVICES": "none"}, [], None),
        ({}, {}, [], None),
    ],
)  # fmt: skip
def test_what_says_the_pod_has_gpus(
    values: dict[str, Any], environ: dict[str, str], devices: list[str], evidence: str | None
) -> None:
    assert evident_gpus(settings(**values), environ, lambda: devices) == evidence


def test_auto_finding_nothing_on_a_pod_with_gpus_is_a_warning_and_a_monitor_that_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, "watcher.gpu.select"):
        choice = choose(
            settings(),
            {"NVIDIA_VISIBLE_DEVICES": A},
            import_module=importer(None),
            which=which({}),
            devices=no_devices,
        )
    assert isinstance(choice.backend, Unavailable)
    assert choice.why.endswith(f"although the Pod has GPUs (NVIDIA_VISIBLE_DEVICES={A})")
    (record,) = caplog.records
    assert (record.levelno, record.getMessage()) == (logging.WARNING, f"gpu monitor: {choice.why}")


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
    found = which({"/x/smi": "/x/smi"})
    smi = choose(settings(gpu="nvidia-smi", nvidia_smi="/x/smi"), {}, which=found)
    assert isinstance(smi.backend, SmiBackend) and smi.backend.command == "/x/smi"
    nvml = choose(settings(gpu="nvml"), {}, import_module=importer(FakeNvml([])))
    assert isinstance(nvml.backend, NvmlBackend)
    assert choose(settings(gpu="off"), {}).backend is None
    assert choose(settings(gpu="off"), {}, import_module=nothing).why == "off (WATCHER_GPU=off)"
    dcgm = choose(
        settings(gpu="dcgm", dcgm_exporter_url="http://10.0.0.7:9400/metrics", pod_name="p"),
        {"NVIDIA_VISIBLE_DEVICES": A},
        which=which({"dcgmi": "/usr/bin/dcgmi"}),
    )
    assert isinstance(dcgm.backend, DcgmBackend)
    assert dcgm.backend.url == "http://10.0.0.7:9400/metrics"
    assert dcgm.backend.dcgmi == "/usr/bin/dcgmi"


def test_a_backend_asked_for_by_name_that_cannot_run_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match=r"WATCHER_GPU=nvml but pynvml does not import"):
        choose(settings(gpu="nvml"), {}, import_module=importer(None))
    no_library = FakeNvml(h100s(1))
    no_library.init_error = 12
    with pytest.raises(ConfigError, match=r"libnvidia-ml.so.1 is not in this container"):
        choose(settings(gpu="nvml"), {}, import_module=importer(no_library))
    with pytest.raises(ConfigError, match=r"WATCHER_NVIDIA_SMI=/x/smi is not found"):
        choose(settings(gpu="nvidia-smi", nvidia_smi="/x/smi"), {}, which=which({}))


def test_relay_asked_for_by_name_needs_the_launcher() -> None:
    with pytest.raises(ConfigError, match=r"WATCHER_GPU=relay needs WATCHER_LAUNCHER_DIR"):
        choose(settings(gpu="relay"), {})
    choice = choose(settings(gpu="relay", launcher_dir=Path("/pw")), {})
    assert isinstance(choice.backend, RelayBackend) and choice.backend.named
    assert choice.backend.files.run == Path("/pw/run")


def test_auto_with_a_launcher_and_no_gpu_here_reads_the_trainer_s_through_the_relay(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nvml = FakeNvml(h100s(1))
    nvml.init_error = 12  # no libnvidia-ml.so.1: the device plugin gave this container none
    with caplog.at_level(logging.INFO, "watcher.gpu.select"):
        choice = choose(
            settings(launcher_dir=Path("/pw"), gpu_poll_interval=3.0, gpu_timeout=2.0), {},
            import_module=importer(nvml), which=which({}), devices=no_devices,
        )  # fmt: skip
    assert isinstance(choice.backend, RelayBackend) and not choice.backend.named
    assert (choice.backend.period, choice.backend.timeout) == (3.0, 2.0)
    assert choice.why.startswith("relay: the launcher reads the trainer's GPUs (nvmlInit failed")
    assert [r.levelno for r in caplog.records] == [logging.INFO]


def test_auto_prefers_gpus_this_container_sees_to_the_relay() -> None:
    """A shared DRA claim: the watcher sees the trainer's GPUs itself."""
    choice = choose(
        settings(launcher_dir=Path("/pw")), {}, import_module=importer(FakeNvml(h100s(1)))
    )
    assert isinstance(choice.backend, NvmlBackend)


def test_dcgm_takes_the_uuids_from_the_relay_unless_they_are_configured() -> None:
    url = "http://10.0.0.7:9400/metrics"
    relayed = choose(settings(gpu="dcgm", dcgm_exporter_url=url, launcher_dir=Path("/pw")), {})
    assert isinstance(relayed.backend, DcgmBackend)
    assert isinstance(relayed.backend.uuid_source, RelayUuids)
    for values in ({"gpu_uuids": (A,)}, {}):
        configured = choose(settings(gpu="dcgm", dcgm_exporter_url=url, **values), {})
        assert isinstance(configured.backend, DcgmBackend)
        assert configured.backend.uuid_source is None


def test_a_driver_that_does_not_answer_at_start_is_for_the_polls_to_report() -> None:
    nvml = FakeNvml(h100s(1))
    nvml.init_error = 9  # DriverNotLoaded: maybe lost, maybe later; not the configuration
    choice = choose(settings(gpu="nvml"), {}, import_module=importer(nvml))
    assert isinstance(choice.backend, NvmlBackend)


def test_the_monitor_is_wired_only_when_a_backend_was_chosen(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WATCHER_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("WATCHER_LOG_PATHS", str(tmp_path / "*.log"))
    monkeypatch.setenv("WATCHER_GPU", "nvidia-smi")
    monkeypatch.setenv("WATCHER_NVIDIA_SMI", str(SCRIPT))
    monkeypatch.setenv("WATCHER_GPU_POLL_INTERVAL", "3")
    config = load_config()
    built = build_monitors(config, OpenPolicy(True, {}), SystemClock(), None, {})
    (gpu,) = [m for m in built.all if isinstance(m, GpuMonitor)]
    assert gpu.name == "gpu" and isinstance(gpu.backend, SmiBackend)
    assert gpu.status()["interval_s"] == 3.0
    monkeypatch.setenv("WATCHER_GPU", "off")
    built = build_monitors(load_config(), OpenPolicy(True, {}), SystemClock(), None, {})
    assert not [m for m in built.all if isinstance(m, GpuMonitor)]
