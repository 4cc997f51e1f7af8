"""Which GPU backend runs, and which GPUs are this Pod's.

`auto` takes NVML when the `pynvml` module imports and `nvmlInit` works, else
`nvidia-smi` when the configured command is found, else nothing; the choice and the
reason are logged in one line. Our GPUs: see `watcher.gpu.ours`.

Only the chosen backend is imported (with its parsers): a watcher polling nvidia-smi never
loads NVML's binding or the Prometheus text parser, and none loads the offline-only
parsers (`-q`, `-q -x`, the table).
"""

import importlib
import logging
import shutil
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import aiohttp

from watcher.config.settings import WatcherSettings
from watcher.gpu.backends import GpuBackend
from watcher.gpu.ours import OurGpus, our_uuids

__all__ = ["Choice", "OurGpus", "choose", "nvml_works", "our_uuids"]
"""`OurGpus` and `our_uuids` live in `watcher.gpu.ours`; the wiring takes them from here
with the choice of backend."""

log = logging.getLogger(__name__)

Importer = Callable[[str], ModuleType]
Which = Callable[[str], str | None]


@dataclass(frozen=True)
class Choice:
    backend: GpuBackend | None
    why: str
    """One line: which backend and why (or why none)."""


def choose(
    settings: WatcherSettings,
    environ: Mapping[str, str],
    session: aiohttp.ClientSession | None = None,
    *,
    import_module: Importer = importlib.import_module,
    which: Which = shutil.which,
) -> Choice:
    """The backend for ``settings.gpu`` (None when off or unavailable), logged."""
    uuids = our_uuids(settings.gpu_uuids, environ)
    choice = _choose(settings, uuids, session, import_module, which)
    whose = f"GPUs {', '.join(uuids)}" if uuids else "every GPU it sees"
    log.info("gpu monitor: %s", choice.why, extra={"fields": {"gpu": settings.gpu, "gpus": whose}})
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
        return Choice(_smi(settings.nvidia_smi, timeout), "nvidia-smi (WATCHER_GPU)")
    if settings.gpu == "dcgm":
        return Choice(_dcgm(settings, uuids, session, which), "dcgm (WATCHER_GPU)")
    module, problem = _import(import_module)
    if settings.gpu == "nvml":
        backend = None if module is None else _nvml(module, uuids, timeout)
        return Choice(backend, f"off: WATCHER_GPU=nvml but {problem}" if problem else "nvml")
    return _auto(settings, uuids, module, problem, which)


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
    return Choice(None, f"off: {problem}, and {settings.nvidia_smi} is not on PATH")


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
    )


def _import(import_module: Importer) -> tuple[ModuleType | None, str]:
    try:
        return import_module("pynvml"), ""
    except ImportError as exc:
        return None, f"pynvml does not import ({exc}; pip install 'pod-watcher[nvml]')"


def nvml_works(nvml: Any, timeout: float) -> str | None:
    """Try nvmlInit (then nvmlShutdown) in a daemon thread; None if it worked, else why."""
    outcome: list[str | None] = []

    def attempt() -> None:
        try:
            nvml.nvmlInit()
            nvml.nvmlShutdown()
            outcome.append(None)
        except nvml.NVMLError as exc:
            outcome.append(f"nvmlInit failed: {exc}")

    thread = threading.Thread(target=attempt, name="nvml-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else f"nvmlInit did not return within {timeout:g}s"
