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
from typing import Any

import aiohttp

from watcher import __version__
from watcher.actions.actions import Actions
from watcher.actions.annotate import Annotator
from watcher.actions.contract import ActionConfig
from watcher.clock import Clock
from watcher.config.load import Config, ConfigError
from watcher.config.settings import WatcherSettings
from watcher.gang.monitor import GangMonitor
from watcher.gang.setup import build_gang
from watcher.kube.client import KubeApi
from watcher.kube.event_reporter import EventReporter
from watcher.kube.events import EventPoster
from watcher.kube.monitor import KubeMonitor
from watcher.kube.setup import open_api
from watcher.logs.inotify_release import drop_inotify_watches
from watcher.logs.monitor import LogMonitor
from watcher.monitor_setup import build_monitors
from watcher.pipeline import OnExit, Pipeline
from watcher.policy.budget import BudgetConfig
from watcher.policy.config import PolicyConfig
from watcher.policy.policy import Policy
from watcher.policy.rules import rule_views
from watcher.probes.checks import client_session
from watcher.reporting.board import StatusBoard
from watcher.reporting.server import HttpServer, build_app
from watcher.runtime import Runtime
from watcher.state.cursor_keeper import CursorKeeper
from watcher.state.cursors import CursorSnapshot, CursorStore
from watcher.state.ledger import Ledger, LedgerEntry
from watcher.state.monitor import StateMonitor
from watcher.state.startup import plan_start, requested_restart
from watcher.workload.monitor import WorkloadMonitor
from watcher.workload.setup import launcher_state, open_launcher
from watcher.workload.shared import SharedDir

log = logging.getLogger("watcher")


async def serve(
    config: Config, stop: asyncio.Event, clock: Clock, on_exit: OnExit | None = None
) -> int:
    """Run the watcher until it decides to exit or ``stop`` is set; return the exit code.

    The resources opened here (the HTTP session, the API client) are the runtime's to
    close: in order after a clean stop, not at all after a decided exit (the last words
    are written, and the caller exits at once)."""
    resources = contextlib.AsyncExitStack()
    try:
        settings = config.settings
        shared = open_launcher(settings.launcher_dir)
        session = None
        if settings.gpu == "dcgm" or any(probe.type == "http" for probe in settings.probes):
            session = await resources.enter_async_context(client_session())
        api = await open_api(settings, os.environ)
        if api is not None:
            resources.push_async_callback(api.close)
        elif settings.gang != "off":
            raise ConfigError(
                [
                    f"WATCHER_GANG={settings.gang} needs the Kubernetes API, which is off "
                    "(see the log line above: KUBECONFIG or an in-cluster service account)"
                ]
            )
        parts = Parts(clock, session, api, shared, os.environ, drop_inotify_watches)
        runtime = build_runtime(config, parts, resources, on_exit)
    except BaseException:
        await resources.aclose()
        raise
    return await runtime.run(stop)


@dataclass(frozen=True)
class Parts:
    """The outside world the watcher is built on, chosen by `serve` (or a test)."""

    clock: Clock
    session: aiohttp.ClientSession | None = None
    api: KubeApi | None = None
    launcher: SharedDir | None = None
    environ: Mapping[str, str] | None = None
    before_exit: Callable[[], object] | None = None
    """Called once an exit is certain (the process's: `drop_inotify_watches`); a test
    that runs several watchers in one process leaves it out."""


def build_runtime(
    config: Config,
    parts: Parts,
    resources: contextlib.AsyncExitStack | None = None,
    on_exit: OnExit | None = None,
) -> Runtime:
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
    last = requested_restart(ledger) if plan.mode == "after_restart" else None
    environ = os.environ if parts.environ is None else parts.environ
    gang = build_gang(settings, api, clock, environ, last)
    if gang is not None:
        monitors.all.append(gang)
    if api is not None:
        restarted_at = None if last is None else last.time
        monitors.all.append(_kube_monitor(settings, api, clock, restarted_at, gang))

    def cursors() -> CursorSnapshot:
        files = log_monitor.cursors() if log_monitor is not None else {}
        return CursorSnapshot(files, plan.acknowledged_restart)

    keeper = CursorKeeper(cursors, store)

    actions = _actions(settings, parts, ledger=ledger, keeper=keeper, events=events, gang=gang)
    policy = Policy(
        _policy_config(config, can_evict=api is not None, can_fail=shared is not None),
        ledger,
        clock,
        foreign_gpu=None if monitors.gpu is None else monitors.gpu.foreign_gpu,
    )
    pipeline = Pipeline(
        monitors=monitors.all,
        policy=policy,
        actions=actions,
        ledger=ledger,
        board=StatusBoard(clock),
        clock=clock,
        queue_size=settings.queue_size,
        start_info={"mode": plan.mode, "rules": len(config.rules), "version": __version__},
        on_exit=on_exit,
        reporters=() if events is None else (events,),
    )
    server = HttpServer(
        build_app(pipeline, pipeline.metrics.registry), settings.http_host, settings.http_port
    )
    return Runtime(
        pipeline,
        server,
        keeper,
        cursors_moved=None if log_monitor is None else log_monitor.moved,
        resources=resources,
        dry_run=settings.dry_run,
    )


def _actions(
    settings: WatcherSettings,
    parts: Parts,
    *,
    ledger: Ledger,
    keeper: CursorKeeper,
    events: EventReporter | None,
    gang: GangMonitor | None,
) -> Actions:
    """The actions, with what this Pod has: the API (annotations, Events, eviction), the
    launcher (verdicts, stops), the gang (the early write)."""
    api = parts.api
    return Actions(
        ActionConfig(
            settings.restart_exit_code,
            settings.termination_log,
            settings.last_words_timeout,
            settings.stop_grace,
        ),
        ledger=ledger,
        clock=parts.clock,
        save_cursors=keeper.writer,
        annotator=Annotator(None if api is None else api.annotate),
        events=None if events is None else events.drain,
        evict=None if api is None else api.evict,
        launcher=parts.launcher,
        gang=None if gang is None else gang.coordinator,
        before_exit=parts.before_exit,
    )


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
    gang: GangMonitor | None = None,
) -> KubeMonitor:
    timeout = settings.gang_barrier_timeout

    async def first_read() -> dict[str, Any] | None:
        assert gang is not None
        return await gang.pod_read(timeout)

    return KubeMonitor(
        api,
        clock,
        container=settings.container_name,
        exit_code=settings.restart_exit_code,
        restarted_at=restarted_at,
        verify_timeout=settings.verify_restart_timeout,
        launcher_dir=None if settings.launcher_dir is None else str(settings.launcher_dir),
        first_read=None if gang is None else first_read,
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
