"""Which monitors run, built from the configuration. Every source is optional but one."""

import os
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from watcher.clock import Clock
from watcher.config.load import Config
from watcher.config.settings import WatcherSettings
from watcher.gpu.monitor import GpuMonitor
from watcher.gpu.select import OurGpus, choose, our_uuids
from watcher.launcher.logcopy import LOG_DIR, LOG_NAME
from watcher.logs.files import OpenPolicy, TrackedFiles
from watcher.logs.globs import GlobSet, escape
from watcher.logs.monitor import LogMonitor, Timing
from watcher.monitor import Monitor
from watcher.probes.monitor import ProbeMonitor
from watcher.progress.monitor import ProgressConfig, ProgressMonitor
from watcher.progress.signals import LogActivity
from watcher.rules.matcher import RuleMatcher


@dataclass(frozen=True)
class Monitors:
    all: list[Monitor]
    log: LogMonitor | None
    """The log monitor, whose read cursors the state directory keeps."""
    gpu: GpuMonitor | None = None
    """The GPU monitor, which knows which bus ids are this Pod's GPUs."""


def build_monitors(
    config: Config,
    open_policy: OpenPolicy,
    clock: Clock,
    session: aiohttp.ClientSession | None,
    environ: Mapping[str, str] | None = None,
) -> Monitors:
    settings = config.settings
    progress = ProgressConfig(
        silence_timeout=settings.silence_timeout,
        startup_grace=settings.startup_grace,
        progress_timeout=settings.progress_timeout,
        heartbeat_file=settings.heartbeat_file,
        heartbeat_timeout=settings.heartbeat_timeout,
    )
    activity = LogActivity(clock, settings.progress_pattern) if progress.enabled else None
    monitors: list[Monitor] = []
    log_monitor = None
    if log_globs(settings):
        log_monitor = _log_monitor(config, open_policy, clock, activity)
        monitors.append(log_monitor)
    if activity is not None:
        catch_up = None if log_monitor is None else log_monitor.catch_up
        monitors.append(ProgressMonitor(progress, activity, clock, catch_up))
    if settings.probes:
        monitors.append(ProbeMonitor(settings.probes, clock, session))
    gpu = None
    if settings.gpu != "off":
        gpu = _gpu_monitor(settings, clock, session, os.environ if environ is None else environ)
        if gpu is not None:
            monitors.append(gpu)
    return Monitors(monitors, log_monitor, gpu)


def _gpu_monitor(
    settings: WatcherSettings,
    clock: Clock,
    session: aiohttp.ClientSession | None,
    environ: Mapping[str, str],
) -> GpuMonitor | None:
    choice = choose(settings, environ, session)
    if choice.backend is None:
        return None
    return GpuMonitor(
        choice.backend,
        interval=settings.gpu_poll_interval,
        timeout=settings.gpu_timeout,
        clock=clock,
        keep=OurGpus(our_uuids(settings.gpu_uuids, environ)),
        why=choice.why,
    )


def log_globs(settings: WatcherSettings) -> tuple[str, ...]:
    """The configured globs, plus the workload's output when the launcher runs it."""
    if settings.launcher_dir is None:
        return settings.log_paths
    own = escape(str(settings.launcher_dir / LOG_DIR / LOG_NAME))
    return (*settings.log_paths, own) if own not in settings.log_paths else settings.log_paths


def _log_monitor(
    config: Config, open_policy: OpenPolicy, clock: Clock, activity: LogActivity | None
) -> LogMonitor:
    settings = config.settings
    files = TrackedFiles(
        GlobSet(log_globs(settings)),
        max_files=settings.max_files,
        max_line=settings.max_line_bytes,
        chunk=settings.read_chunk_bytes,
    )
    timing = Timing(
        settings.poll_interval,
        settings.fallback_poll_interval,
        settings.rotate_wait,
        glob_grace=settings.log_glob_grace,
    )
    return LogMonitor(
        files=files,
        matcher=RuleMatcher(config.rules),
        open_policy=open_policy,
        timing=timing,
        clock=clock,
        readers=() if activity is None else (activity.on_block,),
    )
