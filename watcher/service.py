"""The composition root: build every part from the configuration and run them.

Every outside dependency (clock, paths, the file watcher) is chosen here and passed
down; nothing below reads the environment or global state.
"""

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiohttp

from watcher import __version__, exitcodes
from watcher.actions.actions import ActionConfig, Actions
from watcher.actions.annotate import Annotator
from watcher.app import OnExit, Watcher
from watcher.blocking import call_with_deadline
from watcher.clock import Clock
from watcher.config.load import Config, ConfigError
from watcher.config.settings import WatcherSettings
from watcher.kube.client import KubeApi
from watcher.kube.event_reporter import EventReporter
from watcher.kube.events import EventPoster
from watcher.kube.monitor import KubeMonitor
from watcher.kube.setup import open_api
from watcher.logs.monitor import LogMonitor
from watcher.monitor_setup import build_monitors
from watcher.policy.budget import BudgetConfig
from watcher.policy.policy import Policy, PolicyConfig
from watcher.policy.rules import rule_views
from watcher.probes.checks import client_session
from watcher.reporting.board import StatusBoard
from watcher.reporting.server import HttpServer, build_app
from watcher.state.cursors import CursorSnapshot, CursorStore
from watcher.state.ledger import Ledger, LedgerEntry
from watcher.state.monitor import StateMonitor
from watcher.state.startup import plan_start, requested_restart
from watcher.workload.monitor import WorkloadMonitor
from watcher.workload.setup import launcher_state, open_launcher
from watcher.workload.shared import SharedDir

log = logging.getLogger("watcher")

FINAL_SAVE_TIMEOUT = 1.0
CursorSaver = Callable[[], Callable[[], object]]
"""Takes a cursor snapshot on the loop and returns the blocking write."""


async def serve(
    config: Config, stop: asyncio.Event, clock: Clock, on_exit: OnExit | None = None
) -> int:
    """Run the watcher until it decides to exit or ``stop`` is set; return the exit code.

    After a clean stop everything is closed in order. After a decided exit (the restart
    code) nothing is: the last words are written, and the caller exits at once."""
    stack = contextlib.AsyncExitStack()
    code = exitcodes.INTERNAL_ERROR
    try:
        settings = config.settings
        shared = open_launcher(settings.launcher_dir)
        session = None
        if settings.gpu == "dcgm" or any(probe.type == "http" for probe in settings.probes):
            session = await stack.enter_async_context(client_session())
        api = await open_api(settings, os.environ)
        if api is not None:
            stack.push_async_callback(api.close)
        parts = Parts(clock, session, api, shared, os.environ)
        watcher, save_cursors = build_watcher(config, parts, on_exit)
        code = await _serve(config.settings, watcher, save_cursors, stop)
        return code
    finally:
        if code in (exitcodes.CLEAN, exitcodes.INTERNAL_ERROR):
            await stack.aclose()


async def _serve(
    settings: WatcherSettings, watcher: Watcher, save_cursors: CursorSaver, stop: asyncio.Event
) -> int:
    server = HttpServer(
        build_app(watcher, watcher.metrics.registry), settings.http_host, settings.http_port
    )
    try:
        port = await server.start()
    except OSError as exc:
        raise ConfigError(
            [f"WATCHER_HTTP_PORT={settings.http_port}: cannot listen: {exc}"]
        ) from None
    fields = {**watcher.start_info, "port": port, "dry_run": settings.dry_run}
    log.info("starting", extra={"fields": fields})
    announcer = asyncio.create_task(_announce_ready(watcher, port, save_cursors), name="ready")
    code = exitcodes.INTERNAL_ERROR
    try:
        code = await watcher.run(stop)
    finally:
        announcer.cancel()
        if code == exitcodes.CLEAN:
            await _final_save(save_cursors)
        if code in (exitcodes.CLEAN, exitcodes.INTERNAL_ERROR):
            await server.stop()
    return code


@dataclass(frozen=True)
class Parts:
    """The outside world the watcher is built on, chosen by `serve` (or a test)."""

    clock: Clock
    session: aiohttp.ClientSession | None = None
    api: KubeApi | None = None
    launcher: SharedDir | None = None
    environ: Mapping[str, str] | None = None


def build_watcher(
    config: Config, parts: Parts, on_exit: OnExit | None = None
) -> tuple[Watcher, CursorSaver]:
    """Every part, wired; reads the state directory to decide where reading starts."""
    settings, clock, api, shared = config.settings, parts.clock, parts.api, parts.launcher
    assert settings.state_dir is not None  # guaranteed by load_config
    ledger = Ledger(settings.state_dir, clock=clock)
    ledger.load()
    store = CursorStore(settings.state_dir)
    plan = plan_start(ledger, store.load(), settings.start_position, launcher_state(shared))
    if plan.not_taken is not None:
        _not_taken(ledger, plan.not_taken, clock)
    monitors = build_monitors(config, plan.open_policy, clock, parts.session, parts.environ)
    monitors.all.append(StateMonitor(ledger, store, clock))
    if shared is not None:
        monitors.all.append(_workload_monitor(settings, shared, clock, monitors.log))
    log_monitor = monitors.log
    events = None
    if api is not None:
        poster = EventPoster(api, clock, settings.container_name)
        events = EventReporter(poster, settings.restart_exit_code)
    if api is not None:
        last = requested_restart(ledger) if plan.mode == "after_restart" else None
        restarted_at = None if last is None else last.time
        monitors.all.append(_kube_monitor(settings, api, clock, restarted_at))

    def save_cursors() -> Callable[[], object]:
        files = log_monitor.cursors() if log_monitor is not None else {}
        snapshot = CursorSnapshot(files, plan.acknowledged_restart)
        return lambda: store.save(snapshot)

    actions = Actions(
        ActionConfig(
            settings.restart_exit_code,
            settings.termination_log,
            settings.last_words_timeout,
            settings.stop_grace,
        ),
        ledger=ledger,
        clock=clock,
        save_cursors=save_cursors,
        annotator=Annotator(None if api is None else api.annotate),
        events=None if events is None else events.drain,
        evict=None if api is None else api.evict,
        launcher=shared,
    )
    policy = Policy(
        _policy_config(config, can_evict=api is not None, can_fail=shared is not None),
        ledger,
        clock,
        foreign_gpu=None if monitors.gpu is None else monitors.gpu.foreign_gpu,
    )
    watcher = Watcher(
        monitors=monitors.all,
        policy=policy,
        actions=actions,
        ledger=ledger,
        board=StatusBoard(clock),
        clock=clock,
        queue_size=settings.queue_size,
        save_cursors=save_cursors,
        start_info={"mode": plan.mode, "rules": len(config.rules), "version": __version__},
        cursors_moved=None if log_monitor is None else log_monitor.moved,
        on_exit=on_exit,
        reporters=() if events is None else (events,),
    )
    return watcher, save_cursors


def _not_taken(ledger: Ledger, entry: LedgerEntry, clock: Clock) -> None:
    why = (
        "the watcher stopped after recording this restart and before its exit took effect: "
        "the launcher kept running, so no container was restarted"
    )
    log.warning("a recorded restart did not happen", extra={"fields": {"ref": entry.id}})
    try:
        ledger.append(
            LedgerEntry("not_taken", entry.reason, clock.wall(), why, details={"ref": entry.id})
        )
    except OSError as exc:
        log.error("cannot record that a restart did not happen: %s", exc)


def _workload_monitor(
    settings: WatcherSettings, shared: SharedDir, clock: Clock, logs: LogMonitor | None
) -> WorkloadMonitor:
    return WorkloadMonitor(
        shared,
        clock,
        poll_interval=settings.poll_interval,
        final_codes=settings.final_exit_codes,
        catch_up=None if logs is None else logs.catch_up,
    )


def _kube_monitor(
    settings: WatcherSettings,
    api: KubeApi,
    clock: Clock,
    restarted_at: float | None,
) -> KubeMonitor:
    return KubeMonitor(
        api,
        clock,
        container=settings.container_name,
        exit_code=settings.restart_exit_code,
        restarted_at=restarted_at,
        verify_timeout=settings.verify_restart_timeout,
        launcher_dir=None if settings.launcher_dir is None else str(settings.launcher_dir),
    )


def _policy_config(config: Config, *, can_evict: bool, can_fail: bool) -> PolicyConfig:
    settings = config.settings
    budget = BudgetConfig(
        max_restarts=settings.max_restarts,
        window=settings.restart_window,
        min_uptime=settings.min_uptime,
        backoff=settings.restart_backoff,
        backoff_max=settings.restart_backoff_max,
    )
    return PolicyConfig(
        restart_exit_code=settings.restart_exit_code,
        dry_run=settings.dry_run,
        budget=budget,
        actions=settings.actions,
        budget_exhausted_action=settings.budget_exhausted_action,
        can_evict=can_evict,
        can_fail=can_fail,
        rules=rule_views(LogMonitor.name, config.rules),
    )


async def _announce_ready(watcher: Watcher, port: int, save_cursors: CursorSaver) -> None:
    await asyncio.gather(*(m.ready.wait() for m in watcher.monitors))
    await _final_save(save_cursors)  # records that this start saw the last restart
    log.info("ready", extra={"fields": {"port": port}})


async def _final_save(save_cursors: CursorSaver) -> None:
    try:
        await call_with_deadline(save_cursors(), FINAL_SAVE_TIMEOUT, "cursors")
    except (OSError, TimeoutError) as exc:
        log.warning("cannot save read cursors: %s", exc)
