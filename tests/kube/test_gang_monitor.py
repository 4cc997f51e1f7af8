"""The gang monitor against the fake API over real HTTP: joining (one patch, whose answer
is the Pod read), the barrier, a peer's restart, bypass, the deadline, lost coordination,
and the standalone Lease with its aggregator."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from tests.kube.fake_api import FakeApi, Mode
from tests.kube.fake_jobset import (
    ATTEMPT,
    DISABLE,
    FakeJobSetController,
    in_place_jobset,
    jobset_pod,
)
from tests.waiting import until
from watcher.clock import SystemClock
from watcher.gang import reasons
from watcher.gang.arrivals import BARRIER
from watcher.gang.jobset import JobSetCoordinator
from watcher.gang.lease import ARRIVAL, LeaseCoordinator
from watcher.gang.monitor import GangMonitor
from watcher.kube.client import KubeApi, connect
from watcher.kube.generation import GENERATION
from watcher.kube.watch import WatchConfig
from watcher.types import Finding

CONFIG = WatchConfig(api_timeout=2.0, lost_after=1.0, backoff_max=0.5)
LIMIT = 20.0
"""Generous: these wait on HTTP on a busy 2-core machine."""


class Member:
    def __init__(self, monitor: GangMonitor, api: KubeApi) -> None:
        self.monitor, self.api = monitor, api
        self.findings: list[Finding] = []
        self.task = asyncio.create_task(monitor.run(self.findings.append))

    def reasons(self) -> list[str]:
        return [f.reason for f in self.findings]


@asynccontextmanager
async def members(
    kubeconfig: Path, pods: list[str], build: Callable[[KubeApi, int], GangMonitor]
) -> AsyncIterator[list[Member]]:
    apis = [await connect(pod, "default", 2.0, {"KUBECONFIG": str(kubeconfig)}) for pod in pods]
    started = [Member(build(api, index), api) for index, api in enumerate(apis)]
    try:
        yield started
    finally:
        for member in started:
            member.task.cancel()
        await asyncio.gather(*(m.task for m in started), return_exceptions=True)
        for api in apis:
            await api.close()


def jobset_member(timeout: float = 60.0) -> Callable[[KubeApi, int], GangMonitor]:
    def build(api: KubeApi, index: int) -> GangMonitor:
        coordinator = JobSetCoordinator(api, "js", CONFIG)
        return GangMonitor(coordinator, SystemClock(), barrier_timeout=timeout)

    return build


async def jobset_gang(fake_api: FakeApi, n: int, **annotations: str) -> list[str]:
    fake_api.delete("pods", "trainer")
    js = in_place_jobset(replicas=1, parallelism=n)
    js["metadata"]["annotations"] = annotations
    fake_api.put(js)
    for index in range(n):
        fake_api.put(jobset_pod("js", index))
    await FakeJobSetController(fake_api).start()
    return [f"js-rj-0-{i}" for i in range(n)]


async def test_joining_costs_one_patch_whose_answer_is_the_pod_read(
    fake_api: FakeApi, kubeconfig: Path
) -> None:
    pods = await jobset_gang(fake_api, 2)
    async with members(kubeconfig, pods, jobset_member()) as gang:
        await until(lambda: all(m.monitor.ready.is_set() for m in gang), LIMIT, "barriers down")
        pod = await gang[0].monitor.pod_read(LIMIT)
        assert pod is not None and pod["metadata"]["annotations"][ATTEMPT] == "0"
        assert fake_api.counts()["pods.patch"] == 2 and fake_api.counts()["pod"] == 0
        assert gang[0].reasons() == [reasons.BARRIER_LIFTED]
        assert gang[0].monitor.coordinator.early_annotations() == {ATTEMPT: "1"}

        await gang[1].api.annotate({ATTEMPT: "1"})  # pod 1 decided to restart: early write
        await until(lambda: reasons.GANG_RESTART in gang[0].reasons(), LIMIT, "the restart")
        restart = gang[0].findings[-1]
        assert restart.facts[reasons.GENERATION] == 1
        assert restart.facts[reasons.GANG_KEY] == "jobset/default/js"
        status = fake_api.get("jobsets", "js")
        assert status is not None and status["status"]["previousInPlaceRestartAttempt"] == 0


async def test_an_opted_out_jobset_lifts_the_barrier_at_once_and_writes_nothing(
    fake_api: FakeApi, kubeconfig: Path
) -> None:
    pods = await jobset_gang(fake_api, 2, **{DISABLE: "true"})
    async with members(kubeconfig, pods[:1], jobset_member()) as gang:
        await until(gang[0].monitor.ready.is_set, LIMIT, "the barrier down")
        assert await gang[0].monitor.pod_read(1.0) is None
        assert fake_api.counts()["pods.patch"] == 0
        assert gang[0].monitor.coordinator.early_annotations() == {}


async def test_a_gang_that_never_completes_reaches_the_barrier_deadline(
    fake_api: FakeApi, kubeconfig: Path
) -> None:
    pods = await jobset_gang(fake_api, 3)
    async with members(kubeconfig, pods[:2], jobset_member(timeout=1.0)) as gang:
        await until(
            lambda: all(reasons.BARRIER_DEADLINE in m.reasons() for m in gang), LIMIT, "deadline"
        )
        assert not any(m.monitor.ready.is_set() for m in gang)
        assert "a Pod of the gang did not come back" in gang[0].findings[-1].message


async def test_a_forbidding_api_is_lost_coordination_then_the_deadline(
    fake_api: FakeApi, kubeconfig: Path
) -> None:
    pods = await jobset_gang(fake_api, 1)
    fake_api.set_mode("jobsets.list", Mode.FORBIDDEN)
    async with members(kubeconfig, pods, jobset_member(timeout=2.0)) as gang:
        await until(lambda: reasons.BARRIER_DEADLINE in gang[0].reasons(), LIMIT, "deadline")
        assert gang[0].reasons() == [reasons.COORDINATION_LOST, reasons.BARRIER_DEADLINE]
        assert "403" in (gang[0].monitor.lost or "")
        fake_api.set_mode("jobsets.list", Mode.NORMAL)
        await until(lambda: reasons.COORDINATION_BACK in gang[0].reasons(), LIMIT, "back")


def lease_member(n: int) -> Callable[[KubeApi, int], GangMonitor]:
    def build(api: KubeApi, index: int) -> GangMonitor:
        selector = "batch.kubernetes.io/job-name=gang" if index == 0 else None
        coordinator = LeaseCoordinator(api, "gang", CONFIG, size=n, aggregate=selector)
        return GangMonitor(coordinator, SystemClock(), barrier_timeout=60.0)

    return build


async def test_the_lease_gang_lifts_restarts_and_lifts_again(
    fake_api: FakeApi, kubeconfig: Path
) -> None:
    fake_api.delete("pods", "trainer")
    n = 3
    for index in range(n):
        pod = jobset_pod("js", index)
        pod["metadata"]["labels"]["batch.kubernetes.io/job-name"] = "gang"
        fake_api.put(pod)
    pods = [f"js-rj-0-{i}" for i in range(n)]
    async with members(kubeconfig, pods, lease_member(n)) as gang:
        await until(lambda: all(m.monitor.ready.is_set() for m in gang), LIMIT, "barriers down")
        lease = fake_api.get("leases", "gang")
        assert lease is not None and lease["metadata"]["annotations"][BARRIER] == "0"
        arrived = fake_api.get("pods", pods[1])
        assert arrived is not None and arrived["metadata"]["annotations"][ARRIVAL] == "0"
        before = fake_api.counts()
        await gang[2].monitor.coordinator.early_write()  # pod 2 decided: one PUT
        await until(
            lambda: all(reasons.GANG_RESTART in m.reasons() for m in gang[:2]), LIMIT, "restart"
        )
        assert (fake_api.counts() - before) == {"leases.update": 1}
        lease = fake_api.get("leases", "gang")
        assert lease is not None and lease["metadata"]["annotations"][GENERATION] == "1"
        await gang[1].monitor.coordinator.early_write()  # a second decider: no write
        assert (fake_api.counts() - before)["leases.update"] == 1


async def test_a_restarted_lease_member_bumps_at_its_start_when_its_early_bump_failed(
    fake_api: FakeApi, kubeconfig: Path
) -> None:
    """Its ledger says its restart moved the gang to 1, the Lease still says 0: the bump
    of its last words did not get through (API down), so its start does it."""
    fake_api.put(jobset_pod("js", 0))
    api = await connect("js-rj-0-0", "default", 2.0, {"KUBECONFIG": str(kubeconfig)})
    try:
        coordinator = LeaseCoordinator(api, "gang", CONFIG, size=2, aggregate=None, resume=1)
        await coordinator.join(None)
        assert coordinator.own == 1
        lease = fake_api.get("leases", "gang")
        assert lease is not None and lease["metadata"]["annotations"][GENERATION] == "1"
        again = LeaseCoordinator(api, "gang", CONFIG, size=2, aggregate=None, resume=1)
        await again.join(lease)  # the bump went through: nothing more is written
        assert again.own == 1 and fake_api.counts()["leases.create"] == 1
        assert fake_api.counts()["leases.update"] == 0
    finally:
        await api.close()
