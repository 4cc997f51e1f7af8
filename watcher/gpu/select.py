"""Which GPU backend runs, and which GPUs are this Pod's.

`auto` takes NVML when the `pynvml` module imports and `nvmlInit` works, else
`nvidia-smi` when the configured command is found, else nothing; the choice and the
reason are logged in one line. Our GPUs: `WATCHER_GPU_UUIDS` if set, else
`NVIDIA_VISIBLE_DEVICES` when it lists `GPU-` UUIDs (not `all`, `void`, indices or MIG
devices), else every GPU the backend sees.
"""

import importlib
import logging
import shutil
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import aiohttp

from watcher.config.settings import WatcherSettings
from watcher.gpu.backends import GpuBackend
from watcher.gpu.backends.dcgm import DcgmBackend
from watcher.gpu.backends.nvml import NvmlBackend
from watcher.gpu.backends.smi import SmiBackend
from watcher.gpu.formats.common import filter_snapshot
from watcher.gpu.model import (
    GpuReading,
    Snapshot,
    ToolFailure,
    ToolProblem,
    normalize_bus_id,
)

log = logging.getLogger(__name__)

Importer = Callable[[str], ModuleType]
Which = Callable[[str], str | None]


@dataclass(frozen=True)
class Choice:
    backend: GpuBackend | None
    why: str
    """One line: which backend and why (or why none)."""


def our_uuids(configured: Sequence[str], environ: Mapping[str, str]) -> tuple[str, ...] | None:
    """The UUIDs of this Pod's GPUs, or None: every GPU the backend sees."""
    if configured:
        return tuple(configured)
    visible = [v.strip() for v in environ.get("NVIDIA_VISIBLE_DEVICES", "").split(",")]
    visible = [v for v in visible if v]
    if visible and all(v.upper().startswith("GPU-") for v in visible):
        return tuple(visible)
    return None


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
        return Choice(SmiBackend(settings.nvidia_smi, timeout), "nvidia-smi (WATCHER_GPU)")
    if settings.gpu == "dcgm":
        return Choice(_dcgm(settings, uuids, session, which), "dcgm (WATCHER_GPU)")
    module, problem = _import(import_module)
    if settings.gpu == "nvml":
        backend = None if module is None else NvmlBackend(module, uuids, timeout)
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
            backend = NvmlBackend(module, uuids, timeout)
            return Choice(backend, "nvml: pynvml loads and nvmlInit works")
        problem = failed
    found = which(settings.nvidia_smi)
    if found is not None:
        return Choice(SmiBackend(found, timeout), f"nvidia-smi at {found} ({problem})")
    return Choice(None, f"off: {problem}, and {settings.nvidia_smi} is not on PATH")


def _dcgm(
    settings: WatcherSettings,
    uuids: tuple[str, ...] | None,
    session: aiohttp.ClientSession | None,
    which: Which,
) -> DcgmBackend:
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


@dataclass
class OurGpus:
    """Keeps only this Pod's GPUs in each snapshot, says when one of them is missing, and
    answers whether a PCI bus id (from a kernel Xid line) is one of ours.

    A GPU that nvidia-smi cannot open is named by its bus id only: it is kept when that
    bus id belonged to one of ours, or is unknown while one of ours is missing."""

    uuids: tuple[str, ...] | None
    _ours: dict[str, str] = field(default_factory=dict)
    """UUID (lower case) -> bus id, for each of ours seen with both."""
    _theirs: set[str] = field(default_factory=set)
    _seen: set[str] = field(default_factory=set)
    """Without UUIDs (every GPU we see is ours): the bus ids seen so far."""
    _complete: bool = False
    """The last poll named every GPU it listed by bus id, and all of ours were among them
    (or seen before): a bus id we do not know is then another Pod's GPU."""

    def keep(self, snapshot: Snapshot) -> Snapshot:
        """A poll: learn which bus ids are ours from it, then keep only ours."""
        if self.uuids is None:
            self._seen |= {r.gpu.bus_id for r in snapshot.readings if r.gpu.bus_id}
            self._complete = bool(snapshot.readings) and _all_named(snapshot)
            return snapshot
        wanted = {u.lower() for u in self.uuids}
        self._learn(snapshot.readings, wanted)
        self._complete = wanted <= set(self._ours) and _all_named(snapshot)
        return self._filter(snapshot)

    def admits(self, reading: GpuReading) -> bool:
        """Whether an event's reading is about one of ours. Learns nothing: one event
        does not say which GPUs a poll would list."""
        if self.uuids is None:
            return True
        return bool(self._filter(Snapshot("event", (reading,))).readings)

    def _filter(self, snapshot: Snapshot) -> Snapshot:
        assert self.uuids is not None
        seen = {r.gpu.uuid.lower() for r in snapshot.readings if r.gpu.uuid}
        seen |= {f.gpu.uuid.lower() for f in snapshot.failures if f.gpu and f.gpu.uuid}
        missing = sorted(u for u in self.uuids if u.lower() not in seen)
        buses = set(self._ours.values())
        if missing:
            buses |= {b for b in _bus_only(snapshot.readings) if b not in self._theirs}
        kept = filter_snapshot(snapshot, self.uuids, buses)
        if missing and snapshot.readings and not _bus_only(kept.readings):
            detail = f"{', '.join(missing)}: not among the GPUs {snapshot.source} sees"
            note = ToolFailure(ToolProblem.NO_DEVICES, detail)
            return Snapshot(kept.source, kept.readings, (*kept.failures, note))
        return kept

    def owns(self, bus_id: str) -> bool | None:
        """True for one of ours; False for another Pod's GPU; None while we cannot tell
        (no poll yet, one of ours never seen, a GPU listed without its bus id)."""
        bus = normalize_bus_id(bus_id)
        ours = self._seen if self.uuids is None else set(self._ours.values())
        if bus in ours:
            return True
        return False if self._complete else None

    def _learn(self, readings: Sequence[GpuReading], wanted: set[str]) -> None:
        for reading in readings:
            uuid, bus = reading.gpu.uuid, reading.gpu.bus_id
            if uuid and bus:
                if uuid.lower() in wanted:
                    self._ours[uuid.lower()] = bus
                else:
                    self._theirs.add(bus)


def _all_named(snapshot: Snapshot) -> bool:
    """Every GPU the poll listed has a bus id (a GPU lost by index only has none)."""
    return all(r.gpu.bus_id for r in snapshot.readings)


def _bus_only(readings: Sequence[GpuReading]) -> set[str]:
    return {r.gpu.bus_id for r in readings if r.gpu.bus_id and not r.gpu.uuid}
