"""The composition root: build every part from the configuration and run them.

Every outside dependency (clock, paths, the file watcher) is chosen here and passed
down; nothing below reads the environment or global state.
"""

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Mapping

import aiohttp

from watcher import __version__, exitcodes
from watcher.actions.actions import ActionConfig, Actions
from watcher.app import Watcher
from watcher.blocking import call_with_deadline
from watcher.clock import Clock
from watcher.config.load import Config, ConfigError
from watcher.config.settings import WatcherSettings
from watcher.kube.client import KubeApi
from watcher.kube.events import EventPoster
from watcher.kube.monitor import KubeMonitor
from watcher.kube.setup import open_api
from watcher.monitors import build_monitors
from watcher.policy.policy import Policy, PolicyConfig
from watcher.probes.checks import client_session
from watcher.reporting.board import StatusBoard
from watcher.reporting.server import HttpServer, build_app
from watcher.state.cursors import CursorSnapshot, CursorStore
from watcher.state.ledger import Ledger
from watcher.state.monitor import StateMonitor
from watcher.state.startup import plan_start

log = logging.getLogger("watcher")

FINAL_SAVE_TIMEOUT = 1.0
CursorSaver = Callable[[], Callable[[], object]]
"""Takes a cursor snapshot on the loop and returns the blocking write."""


async def serve(config: Config, stop: asyncio.Event, clock: Clock) -> int:
    """Run the watcher until it decides to exit or ``stop`` is set; return the exit code."""
    async with contextlib.AsyncExitStack() as stack:
        settings = config.settings
        session = None
        if settings.gpu == "dcgm" or any(probe.type == "http" for probe in settings.probes):
            session = await stack.enter_async_context(client_session())
        api = await open_api(settings, os.environ)
        if api is not None:
            stack.push_async_callback(api.close)
        watcher, save_cursors = build_watcher(config, clock, session, api, os.environ)
        return await _serve(config.settings, watcher, save_cursors, stop)


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
        await server.stop()
    return code


def build_watcher(
    config: Config,
    clock: Clock,
    session: aiohttp.ClientSession | None = None,
    api: KubeApi | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[Watcher, CursorSaver]:
    """Every part, wired; reads the state directory to decide where reading starts."""
    settings = config.settings
    assert settings.state_dir is not None  # guaranteed by load_config
    ledger = Ledger(settings.state_dir)
    ledger.load()
    store = CursorStore(settings.state_dir)
    plan = plan_start(ledger, store.load(), settings.start_position)
    monitors = build_monitors(config, plan.open_policy, clock, session, environ)
    monitors.all.append(StateMonitor(ledger, store, clock))
    log_monitor = monitors.log
    events = None if api is None else EventPoster(api, clock, settings.container_name, None)
    if api is not None:
        last = ledger.last("restart") if plan.mode == "after_restart" else None
        restarted_at = None if last is None else last.time
        monitors.all.append(_kube_monitor(settings, api, clock, restarted_at, events))

    def save_cursors() -> Callable[[], object]:
        files = log_monitor.cursors() if log_monitor is not None else {}
        snapshot = CursorSnapshot(files, plan.acknowledged_restart)
        return lambda: store.save(snapshot)

    action_config = ActionConfig(
        settings.restart_exit_code, settings.termination_log, settings.last_words_timeout
    )
    actions = Actions(
        action_config,
        ledger=ledger,
        clock=clock,
        save_cursors=save_cursors,
        events=events,
        evict=None if api is None else api.evict,
    )
    watcher = Watcher(
        monitors=monitors.all,
        policy=Policy(
            _policy_config(settings, can_evict=api is not None),
            ledger,
            clock,
            gpu_owner=None if monitors.gpu is None else monitors.gpu.owns,
        ),
        actions=actions,
        ledger=ledger,
        board=StatusBoard(clock),
        clock=clock,
        queue_size=settings.queue_size,
        save_cursors=save_cursors,
        start_info={"mode": plan.mode, "rules": len(config.rules), "version": __version__},
        cursors_moved=None if log_monitor is None else log_monitor.moved,
    )
    return watcher, save_cursors


def _kube_monitor(
    settings: WatcherSettings,
    api: KubeApi,
    clock: Clock,
    restarted_at: float | None,
    events: EventPoster | None,
) -> KubeMonitor:
    return KubeMonitor(
        api,
        clock,
        container=settings.container_name,
        exit_code=settings.restart_exit_code,
        restarted_at=restarted_at,
        verify_timeout=settings.verify_restart_timeout,
        events=events,
    )


def _policy_config(settings: WatcherSettings, *, can_evict: bool) -> PolicyConfig:
    return PolicyConfig(
        restart_exit_code=settings.restart_exit_code,
        dry_run=settings.dry_run,
        max_restarts=settings.max_restarts,
        restart_window=settings.restart_window,
        min_uptime=settings.min_uptime,
        actions=settings.actions,
        budget_exhausted_action=settings.budget_exhausted_action,
        can_evict=can_evict,
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
