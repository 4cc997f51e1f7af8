"""The runtime and its pipeline behind a real aiohttp server: endpoints, exit codes, the
shutdown, queue overflow, a reporter that raises."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import generate_latest

from tests.conftest import FakeClock
from tests.waiting import until
from watcher.actions.actions import Actions
from watcher.actions.contract import ActionConfig
from watcher.config.settings import DEFAULT_ACTIONS
from watcher.monitor import Emit
from watcher.pipeline import Pipeline
from watcher.policy.budget import BudgetConfig
from watcher.policy.config import PolicyConfig
from watcher.policy.policy import Policy
from watcher.reporting.board import StatusBoard
from watcher.reporting.reporters import Reporter
from watcher.reporting.server import HttpServer, build_app
from watcher.runtime import STOP_TIMEOUT, Runtime
from watcher.state.cursor_keeper import CursorKeeper
from watcher.state.cursors import CursorSnapshot, CursorStore
from watcher.state.ledger import Ledger
from watcher.types import Action, Decision, FaultClass, Finding, Severity


class ScriptedMonitor:
    """A monitor whose findings, health and fate the test decides."""

    name = "scripted"

    def __init__(self) -> None:
        self.ready = asyncio.Event()
        self.go = asyncio.Event()
        self.to_emit: list[Finding] = []
        self.fail: Exception | None = None
        self.ok = True

    async def run(self, emit: Emit) -> None:
        await self.go.wait()
        self.ready.set()
        if self.fail is not None:
            raise self.fail
        for finding in self.to_emit:
            emit(finding)
        await asyncio.Event().wait()

    def healthy(self) -> tuple[bool, str]:
        return self.ok, "fine" if self.ok else "lost its source"

    def up(self) -> bool:
        return self.ok

    def status(self) -> dict[str, Any]:
        return {"files": 0}

    def counters(self) -> dict[str, float]:
        return {"bytes_scanned": 1234}


def finding(severity: Severity = Severity.FATAL, reason: str = "Boom") -> Finding:
    return Finding("scripted", reason, severity, FaultClass.TRANSIENT, "it broke", 1.0, ("boom",))


@dataclass
class Served:
    runtime: Runtime
    pipeline: Pipeline
    monitor: ScriptedMonitor
    store: CursorStore
    server: HttpServer
    closed: list[str]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.runtime.port}"

    async def run(self, stop: asyncio.Event | None = None) -> int:
        async with asyncio.timeout(5):
            return await self.runtime.run(stop or asyncio.Event())

    async def started(self, stop: asyncio.Event) -> asyncio.Task[int]:
        task = asyncio.create_task(self.runtime.run(stop))
        await asyncio.wait_for(self.runtime.started.wait(), 5)
        return task


def build(
    tmp_path: Path,
    clock: FakeClock,
    monitor: ScriptedMonitor | None = None,
    queue_size: int = 10,
    reporters: Sequence[Reporter] = (),
) -> Served:
    monitor = monitor or ScriptedMonitor()
    ledger = Ledger(tmp_path, clock=clock)
    config = PolicyConfig(88, False, BudgetConfig(3, 3600), DEFAULT_ACTIONS, Action.HOLD)
    store = CursorStore(tmp_path)
    keeper = CursorKeeper(lambda: CursorSnapshot({}, "acknowledged"), store)
    actions = Actions(
        ActionConfig(88, tmp_path / "term", 1.0), ledger=ledger, clock=clock,
        save_cursors=keeper.writer,
    )  # fmt: skip
    pipeline = Pipeline(
        monitors=[monitor], policy=Policy(config, ledger, clock), actions=actions, ledger=ledger,
        board=StatusBoard(clock), clock=clock, queue_size=queue_size,
        start_info={"mode": "fresh"}, reporters=reporters,
    )  # fmt: skip
    closed: list[str] = []
    resources = contextlib.AsyncExitStack()
    resources.callback(closed.append, "resources")
    server = HttpServer(build_app(pipeline, pipeline.metrics.registry), "127.0.0.1", 0)
    runtime = Runtime(pipeline, server, keeper, resources=resources)
    return Served(runtime, pipeline, monitor, store, server, closed)


@pytest.fixture
async def served(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Served]:
    served = build(tmp_path, clock)
    yield served
    await served.server.stop()


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_fatal_finding_makes_run_return_the_restart_code(served: Served) -> None:
    served.monitor.to_emit = [finding(Severity.WARNING, "Meh"), finding()]
    served.monitor.go.set()
    assert await served.run() == 88
    assert served.closed == []  # a decided exit closes nothing: the process exits now
    assert served.store.load() is not None  # the last words saved the cursors
    status, text = await get(f"{served.base}/metrics")  # still up until the exit
    assert status == 200
    labels = 'fault_class="transient",reason="Boom",severity="fatal",source="scripted"'
    assert f"watcher_findings_total{{{labels}}} 1.0" in text
    assert 'watcher_decisions_total{action="restart",dry_run="false"} 1.0' in text
    assert "watcher_scripted_bytes_scanned_total 1234.0" in text
    assert 'watcher_build_info{version="0.1.0"} 1.0' in text


async def test_readiness_health_and_status(served: Served) -> None:
    monitor, watcher = served.monitor, served.pipeline
    stop = asyncio.Event()
    task = await served.started(stop)
    base = served.base
    try:
        assert (await get(f"{base}/readyz"))[0] == 503
        monitor.to_emit = [finding(Severity.WARNING, "Meh")]
        monitor.go.set()
        await asyncio.wait_for(monitor.ready.wait(), 5)
        assert (await get(f"{base}/readyz"))[0] == 200
        assert (await get(f"{base}/healthz"))[0] == 200
        monitor.ok = False
        status, body = await get(f"{base}/healthz")
        assert status == 503
        assert "lost its source" in body
        await until(lambda: watcher.board.decisions)
        status, body = await get(f"{base}/status")
        assert '"state": "watching"' in body
        assert '"reason": "Meh"' in body
        assert '"max_restarts": 3' in body
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 5) == 0


async def test_a_dying_monitor_ends_the_run_with_exit_1_and_closes_everything(
    served: Served,
) -> None:
    served.monitor.fail = RuntimeError("observer thread died")
    served.monitor.go.set()
    assert await served.run() == 1
    assert served.closed == ["resources"]
    assert served.pipeline.tasks.dead() == ["monitor-scripted"]
    with pytest.raises(aiohttp.ClientConnectionError):
        await get(f"{served.base}/healthz")  # the server is closed


async def test_a_stop_wins_gives_zero_and_saves_the_cursors(served: Served) -> None:
    stop = asyncio.Event()
    stop.set()
    assert await served.run(stop) == 0
    assert served.closed == ["resources"]
    saved = served.store.load()
    assert saved is not None and saved.acknowledged_restart == "acknowledged"


class Stubborn(ScriptedMonitor):
    """A monitor that will not stop: it swallows its cancellation and blocks on, until
    the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.let_go = False

    async def run(self, emit: Emit) -> None:
        self.ready.set()
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if self.let_go:
                    raise


async def test_a_task_that_will_not_stop_cannot_hold_the_shutdown(
    tmp_path: Path, clock: FakeClock
) -> None:
    stubborn = Stubborn()
    served = build(tmp_path, clock, stubborn)
    stop = asyncio.Event()
    task = await served.started(stop)
    stop.set()
    loop = asyncio.get_running_loop()
    began = loop.time()
    assert await asyncio.wait_for(task, 10) == 0
    assert loop.time() - began <= STOP_TIMEOUT + 0.5
    assert served.closed == ["resources"]  # closed all the same, within the deadline
    (left,) = [t for t in asyncio.all_tasks() if t.get_name() == "monitor-scripted"]
    stubborn.let_go = True  # the test's own clean-up
    left.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(left, 5)


async def test_a_full_queue_drops_and_counts(tmp_path: Path, clock: FakeClock) -> None:
    watcher = build(tmp_path, clock, ScriptedMonitor(), queue_size=2).pipeline
    for _ in range(5):
        watcher.emit(finding(Severity.WARNING))
    assert watcher.dropped == 3
    assert watcher.status()["findings_dropped"] == 3


async def test_metrics_answer_in_the_format_and_encoding_the_scraper_asks_for(
    served: Served,
) -> None:
    watcher, monitor = served.pipeline, served.monitor
    stop = asyncio.Event()
    task = await served.started(stop)
    base = served.base
    watcher.emit(finding(Severity.WARNING, "Meh"))
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    headers = {"Accept": accept, "Accept-Encoding": "gzip"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base}/metrics", headers=headers) as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        assert response.headers["Content-Encoding"] == "gzip"
        body = await response.text()  # aiohttp decompresses
    assert body.endswith("# EOF\n")
    assert "watcher_findings_total{" in body
    assert "_created" not in body
    status, text = await get(f"{base}/metrics")
    assert status == 200
    assert "# EOF" not in text and "_created" not in text
    assert 'watcher_monitor_up{monitor="scripted"} 1.0' in text
    monitor.ok = False
    assert 'watcher_monitor_up{monitor="scripted"} 0.0' in (await get(f"{base}/metrics"))[1]
    stop.set()
    assert await asyncio.wait_for(task, 5) == 0


class Broken:
    """A reporter with a bug: every call raises."""

    name = "broken"

    def finding(self, finding: Finding) -> None:
        raise RuntimeError("boom in finding")

    def decision(self, decision: Decision) -> None:
        raise ValueError("boom in decision")


async def test_a_reporter_that_raises_is_counted_and_the_watcher_still_acts(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    served = build(tmp_path, clock, reporters=(Broken(),))
    watcher = served.pipeline
    served.monitor.to_emit = [finding(Severity.WARNING, "Meh"), finding()]
    served.monitor.go.set()
    try:
        assert await served.run() == 88  # it acted all the same
    finally:
        await served.server.stop()
    assert watcher.reporters.failures == {"broken": 4}  # two findings, two decisions
    assert [e.action for e in watcher.ledger.entries] == ["restart"]
    complaints = [r for r in caplog.records if "reporter broken failed" in r.getMessage()]
    assert len(complaints) == 1  # logged once a minute, counted every time
    text = generate_latest(watcher.metrics.registry).decode()
    assert 'watcher_reporter_failures_total{reporter="broken"} 4.0' in text
