"""Which GPU backend runs, and which GPUs are this Pod's.

A backend asked for by name must be able to run, or the configuration is wrong: exit 2
with the reason (`ConfigError`), never a watcher that silently watches no GPU.
`WATCHER_GPU=nvml` needs `pynvml` to import and `nvmlInit` not to say that the library
is missing; `nvidia-smi` needs `WATCHER_NVIDIA_SMI` found; `relay` needs the launcher
(`WATCHER_LAUNCHER_DIR`). A driver that does not answer at start is not a configuration
error: the polls report it.

`auto` takes NVML when `pynvml` imports and `nvmlInit` works, else `nvidia-smi` when the
configured command is found, else, with a launcher, the relay: the launcher reads the
trainer's GPUs in the trainer's container (the device plugin gives this container none),
and the relay backend stays quiet if it finds none there. Nothing, while the Pod
evidently has GPUs (`evident_gpus`), is a warning in the log, and the monitor runs anyway
on a backend that says so at every poll (`/status`, `/metrics`, `up()` false). The choice
and the reason are logged in one line. Our GPUs: see `watcher.gpu.ours`.

Only the chosen backend is imported (with its parsers): a watcher polling nvidia-smi never
loads NVML's binding or the Prometheus text parser, and none loads the offline-only
parsers (`-q`, `-q -x`, the table).
"""

import glob
import importlib
import logging
import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import aiohttp

from watcher.config.load import ConfigError
from watcher.config.settings import WatcherSettings
from watcher.gpu.backends import GpuBackend
from watcher.gpu.backends.unavailable import Unavailable
from watcher.gpu.ours import OurGpus, our_uuids
from watcher.launcher.channel import RUN_DIR

__all__ = ["Choice", "OurGpus", "choose", "evident_gpus", "nvml_works", "our_uuids"]
"""`OurGpus` and `our_uuids` live in `watcher.gpu.ours`; the wiring takes them from here
with the choice of backend."""

log = logging.getLogger(__name__)

Importer = Callable[[str], ModuleType]
Which = Callable[[str], str | None]
Devices = Callable[[], list[str]]
LIBRARY_NOT_FOUND = 12
"""NVML_ERROR_LIBRARY_NOT_FOUND: nvmlInit could not load libnvidia-ml.so.1."""
NO_GPU_VALUES = frozenset({"", "void", "none"})
"""NVIDIA_VISIBLE_DEVICES values that give a container no GPU (NVIDIA container toolkit)."""
RELAY_NEEDS_LAUNCHER = (
    "WATCHER_GPU=relay needs WATCHER_LAUNCHER_DIR: the relay runs in the launcher, in the "
    "trainer's container"
)


@dataclass(frozen=True)
class Choice:
    backend: GpuBackend | None
    why: str
    """One line: which backend and why (or why none)."""


def nvidia_devices() -> list[str]:
    """The GPU device nodes in this container (`/dev/nvidia0`...)."""
    return sorted(glob.glob("/dev/nvidia[0-9]*"))


def evident_gpus(
    settings: WatcherSettings, environ: Mapping[str, str], devices: Devices = nvidia_devices
) -> str | None:
    """What says this Pod has GPUs, or None. A DRA claim (and any CDI injection) sets
    NVIDIA_VISIBLE_DEVICES=void and adds the device nodes (NVIDIA/k8s-dra-driver-gpu,
    cmd/gpu-kubelet-plugin/cdi.go), so the nodes count whatever that variable says."""
    if settings.gpu_uuids:
        return f"WATCHER_GPU_UUIDS={','.join(settings.gpu_uuids)}"
    visible = environ.get("NVIDIA_VISIBLE_DEVICES", "").strip()
    if visible.lower() not in NO_GPU_VALUES:
        return f"NVIDIA_VISIBLE_DEVICES={visible}"
    found = devices()
    return f"{', '.join(found)} in this container" if found else None


def choose(
    settings: WatcherSettings,
    environ: Mapping[str, str],
    session: aiohttp.ClientSession | None = None,
    *,
    import_module: Importer = importlib.import_module,
    which: Which = shutil.which,
    devices: Devices = nvidia_devices,
) -> Choice:
    """The backend for ``settings.gpu`` (None when off, or when `auto` finds nothing on a
    Pod without GPUs), logged. Raises ConfigError when the named backend cannot run."""
    uuids = our_uuids(settings.gpu_uuids, environ)
    choice = _choose(settings, uuids, session, import_module, which)
    if choice.backend is None and settings.gpu == "auto":
        evidence = evident_gpus(settings, environ, devices)
        if evidence is not None:
            why = f"{choice.why}, although the Pod has GPUs ({evidence})"
            choice = Choice(Unavailable(why), why)
    whose = f"GPUs {', '.join(uuids)}" if uuids else "every GPU it sees"
    level = logging.WARNING if isinstance(choice.backend, Unavailable) else logging.INFO
    fields = {"gpu": settings.gpu, "gpus": whose}
    log.log(level, "gpu monitor: %s", choice.why, extra={"fields": fields})
    return choice


def _choose(
    settings: WatcherSettings,
    uuids: tuple[str, ...] | None,
    session: aiohttp.ClientSession | None,
    import_module: Importer,
    which: Which,
) -> Choice:
    timeout = settings.gpu_timeout
    if settings.gpu == "off":
        return Choice(None, "off (WATCHER_GPU=off)")
    if settings.gpu == "nvidia-smi":
        found = which(settings.nvidia_smi)
        if found is None:
            raise ConfigError([_smi_missing(settings.nvidia_smi)])
        return Choice(_smi(found, timeout), f"nvidia-smi at {found} (WATCHER_GPU)")
    if settings.gpu == "dcgm":
        return Choice(_dcgm(settings, uuids, session, which), "dcgm (WATCHER_GPU)")
    if settings.gpu == "relay":
        if settings.launcher_dir is None:
            raise ConfigError([RELAY_NEEDS_LAUNCHER])
        return Choice(_relay(settings, named=True), "relay: the launcher reads the trainer's GPUs")
    module, problem = _import(import_module)
    if settings.gpu == "nvml":
        return Choice(_named_nvml(module, problem, uuids, timeout), "nvml (WATCHER_GPU)")
    return _auto(settings, uuids, module, problem, which)


def _named_nvml(
    module: ModuleType | None, problem: str, uuids: tuple[str, ...] | None, timeout: float
) -> GpuBackend:
    """NVML, asked for by name: it must import, and find its library."""
    if module is None:
        raise ConfigError([f"WATCHER_GPU=nvml but {problem}; or set WATCHER_GPU=nvidia-smi"])
    failed, code = _try_init(module, timeout)
    if code == LIBRARY_NOT_FOUND:
        raise ConfigError(
            [
                f"WATCHER_GPU=nvml but {failed}: libnvidia-ml.so.1 is not in this container "
                "(the NVIDIA container toolkit mounts it into a container given GPUs)"
            ]
        )
    return _nvml(module, uuids, timeout)


def _smi_missing(command: str) -> str:
    return (
        f"WATCHER_GPU=nvidia-smi but WATCHER_NVIDIA_SMI={command} is not found (not on PATH, "
        "or not an executable file)"
    )


def _auto(
    settings: WatcherSettings,
    uuids: tuple[str, ...] | None,
    module: ModuleType | None,
    problem: str,
    which: Which,
) -> Choice:
    """NVML if it works, else nvidia-smi if found, else nothing."""
    timeout = settings.gpu_timeout
    if module is not None:
        failed = nvml_works(module, timeout)
        if failed is None:
            backend = _nvml(module, uuids, timeout)
            return Choice(backend, "nvml: pynvml loads and nvmlInit works")
        problem = failed
    found = which(settings.nvidia_smi)
    if found is not None:
        return Choice(_smi(found, timeout), f"nvidia-smi at {found} ({problem})")
    here = f"{problem}, and {settings.nvidia_smi} is not on PATH"
    if settings.launcher_dir is not None:
        why = f"relay: the launcher reads the trainer's GPUs ({here} in this container)"
        return Choice(_relay(settings, named=False), why)
    return Choice(None, f"off: {here}")


def _relay(settings: WatcherSettings, *, named: bool) -> GpuBackend:
    from watcher.gpu.backends.relay import RelayBackend
    from watcher.gpu.backends.relay_files import RelayFiles

    assert settings.launcher_dir is not None
    files = RelayFiles(settings.launcher_dir / RUN_DIR)
    period, timeout = settings.gpu_poll_interval, settings.gpu_timeout
    return RelayBackend(files, period=period, timeout=timeout, named=named)


def _smi(command: str, timeout: float) -> GpuBackend:
    from watcher.gpu.backends.smi import SmiBackend

    return SmiBackend(command, timeout)


def _nvml(module: ModuleType, uuids: tuple[str, ...] | None, timeout: float) -> GpuBackend:
    from watcher.gpu.backends.nvml import NvmlBackend

    return NvmlBackend(module, uuids, timeout)


def _dcgm(
    settings: WatcherSettings,
    uuids: tuple[str, ...] | None,
    session: aiohttp.ClientSession | None,
    which: Which,
) -> GpuBackend:
    from watcher.gpu.backends.dcgm import DcgmBackend

    assert settings.dcgm_exporter_url is not None  # required by the settings for dcgm
    return DcgmBackend(
        settings.dcgm_exporter_url,
        settings.gpu_timeout,
        session=session,
        uuids=uuids,
        pod=(settings.pod_namespace, settings.pod_name) if settings.pod_name else None,
        dcgmi=which(settings.dcgmi),
        uuid_source=None if uuids else _relay_uuids(settings),
    )


def _relay_uuids(settings: WatcherSettings) -> Callable[[], tuple[str, ...] | None] | None:
    """The trainer's GPU UUIDs through the launcher's relay, when there is a launcher."""
    if settings.launcher_dir is None:
        return None
    from watcher.gpu.backends.relay import RelayUuids
    from watcher.gpu.backends.relay_files import RelayFiles

    files = RelayFiles(settings.launcher_dir / RUN_DIR)
    return RelayUuids(files, settings.gpu_poll_interval, settings.gpu_timeout)


def _import(import_module: Importer) -> tuple[ModuleType | None, str]:
    try:
        return import_module("pynvml"), ""
    except ImportError as exc:
        return None, f"pynvml does not import ({exc}; pip install 'pod-watcher[nvml]')"


def nvml_works(nvml: Any, timeout: float) -> str | None:
    """Try nvmlInit (then nvmlShutdown) in a daemon thread; None if it worked, else why."""
    return _try_init(nvml, timeout)[0]


def _try_init(nvml: Any, timeout: float) -> tuple[str | None, int | None]:
    """(None, None) if nvmlInit worked, else why and NVML's error code (None: no answer)."""
    outcome: list[tuple[str | None, int | None]] = []

    def attempt() -> None:
        try:
            nvml.nvmlInit()
            nvml.nvmlShutdown()
            outcome.append((None, None))
        except nvml.NVMLError as exc:
            outcome.append((f"nvmlInit failed: {exc}", getattr(exc, "value", None)))

    thread = threading.Thread(target=attempt, name="nvml-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else (f"nvmlInit did not return within {timeout:g}s", None)
