"""The API cost of one JobSet in-place gang restart, counted at the fake server, with N agents
built from watcher/kube/watch.py (one ObjectWatch of the JobSet each, one annotation patch
of their own Pod per start) and the fake JobSet controller. The kubelet's restart is
instant here: only requests are measured, not restart time.

The agent whose workload failed writes its next attempt before it exits (so the controller
learns of the fault without waiting for that Pod's restart), then starts again like the
others. Per gang restart: 1 early patch + N x (list + watch + patch) + 2 status writes
(previous, then current) = 3N + 3, within the goal of 3N + 10."""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.kube.fake_api import FakeApi
from tests.kube.fake_jobset import ATTEMPT, NAME, FakeJobSetController, in_place_jobset, jobset_pod
from watcher.kube.watch import ObjectWatch, Version, WatchConfig, jobset

CONFIG = WatchConfig(api_timeout=2.0, watch_timeout=60)


class Agent:
    """One start of an agent: annotate, then follow the JobSet until told to restart or
    until the barrier lifts (then keep following, as a running watcher does)."""

    def __init__(self, api_client: Any, pod: str, patch: Callable[[str, int], Awaitable[None]]):
        self.pod, self._patch = pod, patch
        self.watch = ObjectWatch(api_client, jobset("default", "js"), CONFIG)
        self.attempt: int | None = None
        self.restart = asyncio.Event()
        self.barrier_down = asyncio.Event()

    async def run(self) -> None:
        async for update in self.watch:
            if not isinstance(update, Version) or update.obj is None:
                continue
            status = update.obj.get("status", {})
            current, previous = (
                status.get(k)
                for k in ("currentInPlaceRestartAttempt", "previousInPlaceRestartAttempt")
            )
            if self.attempt is None:
                self.attempt = 0 if current is None else current + 1
                await self._patch(self.pod, self.attempt)
            if previous is not None and self.attempt <= previous:
                self.restart.set()
                return
            if current == self.attempt:
                self.barrier_down.set()


async def patcher(core: Any) -> Callable[[str, int], Awaitable[None]]:
    async def patch(pod: str, attempt: int) -> None:
        body = {"metadata": {"annotations": {ATTEMPT: str(attempt)}}}
        async with asyncio.timeout(CONFIG.api_timeout):
            await core.patch_namespaced_pod(pod, "default", body)

    return patch


async def start(agents: list[Agent]) -> list[asyncio.Task[None]]:
    return [asyncio.create_task(a.run()) for a in agents]


async def all_set(events: list[asyncio.Event], seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        await asyncio.gather(*(e.wait() for e in events))


@pytest.mark.slow
@pytest.mark.parametrize("n", [8, 16, 32])
async def test_one_gang_restart_costs_3n_plus_3(fake_api: FakeApi, core: Any, n: int) -> None:
    fake_api.delete("pods", "trainer")
    fake_api.put(in_place_jobset(replicas=1, parallelism=n))
    pods = [f"js-rj-0-{i}" for i in range(n)]
    for index in range(n):
        fake_api.put(jobset_pod("js", index))
    controller = FakeJobSetController(fake_api)
    await controller.start()
    patch = await patcher(core)
    agents = [Agent(core.api_client, pod, patch) for pod in pods]
    tasks = await start(agents)
    await all_set([a.barrier_down for a in agents])
    before, events_before = fake_api.counts(), fake_api.watch_events["jobsets.watch"]
    fault = time.monotonic()

    await patch(pods[3], 1)  # rank 3's workload failed: its watcher writes 1, exits
    await all_set([a.restart for i, a in enumerate(agents) if i != 3])
    told = time.monotonic() - fault
    for task in tasks:
        task.cancel()
    again = [Agent(core.api_client, pod, patch) for pod in pods]  # every Pod restarted
    tasks = await start(again)
    await all_set([a.barrier_down for a in again])

    cost = fake_api.counts() - before
    events = fake_api.watch_events["jobsets.watch"] - events_before
    told_ms = f"peers told in {told * 1000:.0f} ms"
    print(f"N={n}: {dict(cost)} = {cost.total()} requests, {events} watch events, {told_ms}")
    assert cost == {
        "pods.patch": n + 1,
        "jobsets.list": n,
        "jobsets.watch": n,
        "jobsets/status.update": 2,
    }
    assert cost.total() == 3 * n + 3 <= 3 * n + 10
    assert fake_api.counts(NAME)["jobsets/status.update"] == 3  # start, previous, current
    status = fake_api.get("jobsets", "js")
    assert status is not None and status["status"] == {
        "currentInPlaceRestartAttempt": 1,
        "previousInPlaceRestartAttempt": 0,
    }
    assert fake_api.watches("jobsets") == n  # one watch per agent, never one per peer
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert fake_api.errors == [] and json.dumps(controller.errors) == "[]"
