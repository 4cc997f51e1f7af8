"""watcher/kube/watch.py and generation.py against the fake API over real HTTP: every scenario
(normal, 410 then relist, a dropped, timed-out or hung watch, a stalled API, 403, 500) ends
in a defined state within a deadline, at a counted cost."""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.kube.fake_api import FakeApi, Mode
from watcher.kube.client import ApiError
from watcher.kube.generation import GENERATION, Bump, bump_generation, generation_of
from watcher.kube.watch import Lost, ObjectWatch, Update, Version, WatchConfig, follow, lease

NS = "default"
FAST = WatchConfig(
    api_timeout=0.5, watch_timeout=30, backoff_initial=0.05, backoff_max=0.2, lost_after=1.0
)
LOST_DEADLINE = FAST.lost_after + FAST.api_timeout + FAST.backoff_max + 0.5
"""A stalled or failing API is reported within this."""
REF = lease(NS, "gang")


def gang_lease(generation: int = 0, holder: str = "trainer-0") -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "gang", "namespace": NS, "annotations": {GENERATION: str(generation)}},
        "spec": {"holderIdentity": holder},
    }


class Follower:
    """Runs an ObjectWatch in a task and keeps what it yields."""

    def __init__(self, watch: ObjectWatch) -> None:
        self.watch = watch
        self.seen: list[Update] = []
        self._new = asyncio.Event()
        self.task = asyncio.create_task(follow(watch, self._keep))

    async def _keep(self, update: Update) -> None:
        self.seen.append(update)
        self._new.set()

    async def next(self, seconds: float = 3.0) -> Update:
        """The next update, within ``seconds``."""
        count = len(self.seen)
        async with asyncio.timeout(seconds):
            while len(self.seen) == count:
                self._new.clear()
                await self._new.wait()
        return self.seen[count]

    async def version(self, seconds: float = 3.0) -> Version:
        update = await self.next(seconds)
        assert isinstance(update, Version), update
        return update


@pytest.fixture
async def watching(fake_api: FakeApi, core: Any) -> AsyncIterator[Follower]:
    fake_api.bookmark_interval = 0.2
    fake_api.put(gang_lease())
    follower = Follower(ObjectWatch(core.api_client, REF, FAST))
    yield follower
    follower.task.cancel()
    await asyncio.gather(follower.task, return_exceptions=True)
    assert fake_api.errors == []


async def watch_open(api: FakeApi) -> None:
    """Once the watcher's watch (after its list) is open at the fake."""
    for _ in range(300):
        if api.watches("leases") == 1:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no watch open within 3 s")


def generation(update: Update) -> int:
    assert isinstance(update, Version)
    return generation_of(update.obj)


async def test_normal_list_then_one_watch(fake_api: FakeApi, watching: Follower) -> None:
    assert generation(await watching.version()) == 0
    fake_api.put(gang_lease(1))
    assert generation(await watching.version()) == 1
    fake_api.put(gang_lease(1, holder="trainer-5"))
    assert (await watching.version()).obj["spec"]["holderIdentity"] == "trainer-5"  # type: ignore[index]
    await asyncio.sleep(0.5)  # bookmarks arrive; nothing is yielded for them
    assert len(watching.seen) == 3 and fake_api.watch_events["leases.watch"] >= 4
    assert fake_api.counts() == {"leases.list": 1, "leases.watch": 1}
    assert fake_api.watches("leases") == 1


async def test_an_absent_object_then_created(fake_api: FakeApi, watching: Follower) -> None:
    await watching.version()
    fake_api.delete("leases", "gang")
    assert (await watching.version()).obj is None
    fake_api.put(gang_lease(4))
    assert generation(await watching.version()) == 4


async def test_410_then_relist(fake_api: FakeApi, watching: Follower) -> None:
    await watching.version()
    fake_api.bookmark_interval = 3600.0  # so the watcher's resourceVersion falls behind
    fake_api.put(gang_lease(1))
    assert generation(await watching.version()) == 1
    fake_api.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}})
    await watch_open(fake_api)
    fake_api.compact()
    fake_api.end_watches()  # the re-watch from the old resourceVersion gets 410
    fake_api.put(gang_lease(2))  # made while the watcher lists again
    assert generation(await watching.version()) == 2
    assert watching.watch.relists == 1
    assert fake_api.counts()["leases.list"] == 2


async def test_a_dropped_watch_resumes_where_it_was(fake_api: FakeApi, watching: Follower) -> None:
    await watching.version()
    await watch_open(fake_api)
    assert fake_api.drop_watches("leases") == 1
    fake_api.put(gang_lease(3))  # while nobody watches
    assert generation(await watching.version()) == 3
    assert fake_api.counts()["leases.list"] == 1  # resumed from its resourceVersion
    assert fake_api.counts()["leases.watch"] == 2


@pytest.mark.slow
async def test_a_watch_ended_by_its_timeout_is_renewed(fake_api: FakeApi, core: Any) -> None:
    fake_api.put(gang_lease())
    config = WatchConfig(api_timeout=0.5, watch_timeout=1, backoff_initial=0.05)
    follower = Follower(ObjectWatch(core.api_client, REF, config))
    try:
        await follower.version()
        await asyncio.sleep(2.5)
        fake_api.put(gang_lease(1))
        assert generation(await follower.version()) == 1
        assert fake_api.counts()["leases.watch"] == 3 and fake_api.counts()["leases.list"] == 1
    finally:
        follower.task.cancel()


@pytest.mark.slow
async def test_a_hung_watch_is_found_by_its_deadline(fake_api: FakeApi, core: Any) -> None:
    fake_api.put(gang_lease())
    config = WatchConfig(api_timeout=0.5, watch_timeout=1, backoff_initial=0.05, lost_after=5)
    follower = Follower(ObjectWatch(core.api_client, REF, config))
    try:
        await follower.version()
        await watch_open(fake_api)
        fake_api.freeze_watches()  # the server stops talking, and does not end it either
        started = time.monotonic()
        fake_api.put(gang_lease(1))
        assert generation(await follower.version(4.0)) == 1
        assert time.monotonic() - started < config.watch_timeout + config.api_timeout + 1.0
    finally:
        follower.task.cancel()


@pytest.mark.slow
async def test_a_stalled_api_is_lost_within_the_deadline_then_restored(
    fake_api: FakeApi, watching: Follower
) -> None:
    await watching.version()
    await watch_open(fake_api)
    fake_api.set_mode("leases.watch", Mode.STALL)
    fake_api.set_mode("leases.list", Mode.STALL)
    fake_api.end_watches()
    started = time.monotonic()
    lost = await watching.next(LOST_DEADLINE)
    assert isinstance(lost, Lost) and "no answer within 0.5s" in lost.reason
    assert time.monotonic() - started < LOST_DEADLINE
    fake_api.set_mode("leases.watch", Mode.NORMAL)
    fake_api.set_mode("leases.list", Mode.NORMAL)
    restored = await watching.version(FAST.backoff_max + FAST.api_timeout + 1.0)
    assert generation(restored) == 0  # the same version again: contact is back


@pytest.mark.slow
async def test_a_stalled_api_from_the_start(fake_api: FakeApi, core: Any) -> None:
    fake_api.set_mode("leases.list", Mode.STALL)
    follower = Follower(ObjectWatch(core.api_client, REF, FAST))
    try:
        assert isinstance(await follower.next(LOST_DEADLINE), Lost)
    finally:
        follower.task.cancel()


async def test_forbidden_is_lost_at_once(fake_api: FakeApi, core: Any) -> None:
    fake_api.set_mode("leases.list", Mode.FORBIDDEN)
    follower = Follower(ObjectWatch(core.api_client, REF, FAST))
    try:
        lost = await follower.next(FAST.api_timeout + 0.5)
        assert isinstance(lost, Lost) and "403" in lost.reason and "leases" in lost.reason
        await asyncio.sleep(0.5)
        assert len(follower.seen) == 1  # reported once, retried quietly
        assert 2 <= fake_api.counts()["leases.list"] <= 0.5 / FAST.backoff_initial
    finally:
        follower.task.cancel()


async def test_a_failing_watch_is_retried_with_back_off(
    fake_api: FakeApi, watching: Follower
) -> None:
    await watching.version()
    await watch_open(fake_api)
    fake_api.set_mode("leases.watch", Mode.ERROR, Mode.ERROR, Mode.ERROR)
    fake_api.end_watches()
    fake_api.put(gang_lease(7))
    assert generation(await watching.version()) == 7
    assert fake_api.counts()["leases.watch"] == 5  # the first, three 500s, the one that worked
    assert fake_api.counts()["leases.list"] == 1


# -- the restart generation ---------------------------------------------------------------


async def test_bump_from_the_watched_version_is_one_write(
    fake_api: FakeApi, watching: Follower, core: Any
) -> None:
    seen = await watching.version()
    await watch_open(fake_api)
    before = fake_api.counts()
    bumped = await bump_generation(core.api_client, REF, 0, latest=seen.obj)
    assert bumped == Bump(1, wrote=True)
    assert fake_api.counts() - before == {"leases.update": 1}
    assert generation(await watching.version()) == 1


async def test_two_bumps_at_once_are_one_gang_restart(fake_api: FakeApi, core: Any) -> None:
    fake_api.put(gang_lease())
    stale = fake_api.get("leases", "gang")
    results = await asyncio.gather(
        *(bump_generation(core.api_client, REF, 0, latest=stale) for _ in range(2))
    )
    assert sorted(r.wrote for r in results) == [False, True]
    assert {r.generation for r in results} == {1}
    assert generation_of(fake_api.get("leases", "gang")) == 1
    # both PUT with the same resourceVersion: one 409, one read, no second write
    assert fake_api.counts() == {"leases.update": 2, "leases.get": 1}


async def test_a_bump_a_peer_already_made_writes_nothing(fake_api: FakeApi, core: Any) -> None:
    fake_api.put(gang_lease(3))
    bumped = await bump_generation(core.api_client, REF, 2, latest=fake_api.get("leases", "gang"))
    assert bumped == Bump(3, wrote=False) and fake_api.counts() == {}


async def test_a_bump_creates_a_missing_object(fake_api: FakeApi, core: Any) -> None:
    notes = {"pod-watcher/restart-by": "trainer-3"}
    assert await bump_generation(core.api_client, REF, 0, annotations=notes) == Bump(1, True)
    made = fake_api.get("leases", "gang")
    assert made is not None and made["metadata"]["annotations"] == {**notes, GENERATION: "1"}
    assert fake_api.counts() == {"leases.get": 1, "leases.create": 1} and fake_api.errors == []


async def test_bump_conflicts_are_bounded(fake_api: FakeApi, core: Any) -> None:
    fake_api.put(gang_lease())
    stale = fake_api.get("leases", "gang")
    fake_api.put(gang_lease(0, holder="someone"))
    with pytest.raises(ApiError, match="still conflicting after 1 attempts"):
        await bump_generation(core.api_client, REF, 0, latest=stale, attempts=1)


@pytest.mark.parametrize(("mode", "status"), [(Mode.FORBIDDEN, 403), (Mode.ERROR, 500)])
async def test_a_refused_bump_is_an_error(
    fake_api: FakeApi, core: Any, mode: Mode, status: int
) -> None:
    fake_api.put(gang_lease())
    fake_api.set_mode("leases.update", mode)
    with pytest.raises(ApiError) as caught:
        await bump_generation(core.api_client, REF, 0, latest=fake_api.get("leases", "gang"))
    assert caught.value.status == status


async def test_a_stalled_bump_ends_within_the_api_timeout(fake_api: FakeApi, core: Any) -> None:
    fake_api.put(gang_lease())
    fake_api.set_mode("leases.update", Mode.STALL)
    started = time.monotonic()
    with pytest.raises(ApiError, match=r"no answer within 0\.3s"):
        latest = fake_api.get("leases", "gang")
        await bump_generation(core.api_client, REF, 0, latest=latest, api_timeout=0.3)
    assert time.monotonic() - started < 1.0
