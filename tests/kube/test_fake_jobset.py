"""The fake JobSet in-place restart controller: one test per rule (see fake_jobset.py), then
a whole gang restart driven over HTTP as agents drive it, with its API cost."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.kube.fake_api import FakeApi, ThreadedFakeApi
from tests.kube.fake_jobset import (
    ATTEMPT,
    FAILED_REASON,
    NAME,
    FakeJobSetController,
    in_place_jobset,
    jobset_pod,
)
from tests.kube.manifests import restart_in_place

PODS = 4  # in_place_jobset(): 2 replicas x parallelism 2


@pytest.fixture
async def controller(fake_api: FakeApi) -> AsyncIterator[FakeJobSetController]:
    fake_api.delete("pods", "trainer")
    ctl = FakeJobSetController(fake_api)
    await ctl.start()
    yield ctl
    assert fake_api.errors == []  # every status write passed the JobSet schema


async def settle(ctl: FakeJobSetController) -> dict[str, Any]:
    """The JobSet's status once the controller has nothing left to do."""
    for _ in range(200):
        await asyncio.sleep(0.005)
        if not ctl._pending and (ctl._task is None or ctl._task.done()):
            break
    js = ctl.api.get("jobsets", "js")
    assert js is not None
    status: dict[str, Any] = js.get("status", {})
    return status


def gang(api: FakeApi, *attempts: int | None, restarts: int = 0) -> None:
    for index, attempt in enumerate(attempts):
        api.put(jobset_pod("js", index, attempt, restarts))


def writes(api: FakeApi) -> int:
    return api.counts(NAME)["jobsets/status.update"]


async def test_current_is_set_once_every_pod_is_at_the_same_attempt(
    fake_api: FakeApi, controller: FakeJobSetController
) -> None:
    fake_api.put(in_place_jobset())
    gang(fake_api, 0, 0, 0)  # the fourth agent has not annotated yet
    assert await settle(controller) == {}
    gang(fake_api, 0, 0, 0, 0)
    assert await settle(controller) == {"currentInPlaceRestartAttempt": 0}
    assert writes(fake_api) == 1


async def test_a_pod_ahead_sets_previous_then_all_equal_sets_current(
    fake_api: FakeApi, controller: FakeJobSetController
) -> None:
    fake_api.put(in_place_jobset(currentInPlaceRestartAttempt=0))
    gang(fake_api, 1, 0, 0, 0)
    assert await settle(controller) == {
        "currentInPlaceRestartAttempt": 0,
        "previousInPlaceRestartAttempt": 0,
    }
    gang(fake_api, 1, 1, 1)
    assert (await settle(controller))["currentInPlaceRestartAttempt"] == 0  # one still behind
    gang(fake_api, 1, 1, 1, 1)
    assert await settle(controller) == {
        "currentInPlaceRestartAttempt": 1,
        "previousInPlaceRestartAttempt": 0,
    }
    assert writes(fake_api) == 2


async def test_previous_is_never_lowered(
    fake_api: FakeApi, controller: FakeJobSetController
) -> None:
    fake_api.put(in_place_jobset(previousInPlaceRestartAttempt=2, currentInPlaceRestartAttempt=2))
    gang(fake_api, 2, 2, 0, 1)  # two Pods recreated meanwhile, still low
    assert (await settle(controller))["previousInPlaceRestartAttempt"] == 2
    assert writes(fake_api) == 0


async def test_nothing_while_every_attempt_is_zero_or_missing(
    fake_api: FakeApi, controller: FakeJobSetController
) -> None:
    fake_api.put(in_place_jobset())
    gang(fake_api, None, 0, None, 0)
    assert await settle(controller) == {} and writes(fake_api) == 0


async def test_failed_pods_do_not_count_their_attempt(
    fake_api: FakeApi, controller: FakeJobSetController
) -> None:
    fake_api.put(in_place_jobset())
    gang(fake_api, 1, 1, 1, 1)
    failed = jobset_pod("js", 9, attempt=3)
    failed["status"]["phase"] = "Failed"
    fake_api.put(failed)
    assert await settle(controller) == {"currentInPlaceRestartAttempt": 1}


async def test_a_container_restarted_past_max_restarts_fails_the_jobset(
    fake_api: FakeApi, controller: FakeJobSetController
) -> None:
    fake_api.put(in_place_jobset(max_restarts=1))
    gang(fake_api, 0, 0, 0, 0)
    assert (await settle(controller))["currentInPlaceRestartAttempt"] == 0
    pod = restart_in_place(restart_in_place(fake_api.pod("js-rj-0-2")))  # restartCount 2
    fake_api.put(pod)
    status = await settle(controller)
    assert status["terminalState"] == "Failed"
    (failed,) = status["conditions"]
    assert (failed["type"], failed["status"], failed["reason"]) == ("Failed", "True", FAILED_REASON)
    gang(fake_api, 5, 5, 5, 5)  # a finished JobSet is left alone
    assert (await settle(controller))["currentInPlaceRestartAttempt"] == 0


@pytest.mark.parametrize(("attempt", "fails"), [(3, False), (4, False), (5, True)])
async def test_attempts_past_max_restarts_fail_less_the_uncounted_restarts(
    fake_api: FakeApi, controller: FakeJobSetController, attempt: int, fails: bool
) -> None:
    """maxRestarts 3; restarts 2 of which 1 counted: one restart is forgiven."""
    fake_api.put(in_place_jobset(restarts=2, restartsCountTowardsMax=1))
    gang(fake_api, attempt, 0, 0, 0)
    status = await settle(controller)
    assert (status.get("terminalState") == "Failed") is fails
    assert ("previousInPlaceRestartAttempt" in status) is not fails


async def test_an_invalid_annotation_stops_the_reconcile(
    fake_api: FakeApi, controller: FakeJobSetController
) -> None:
    fake_api.put(in_place_jobset())
    gang(fake_api, 1, 0, 0)
    bad = jobset_pod("js", 3)
    bad["metadata"]["annotations"] = {ATTEMPT: "-1"}
    fake_api.put(bad)
    assert await settle(controller) == {}
    assert controller.errors and "invalid value" in controller.errors[-1]


async def test_completions_unlike_parallelism_stops_the_reconcile(
    fake_api: FakeApi, controller: FakeJobSetController
) -> None:
    js = in_place_jobset()
    js["spec"]["replicatedJobs"][0]["template"]["spec"]["completions"] = 3
    fake_api.put(js)
    gang(fake_api, 0, 0, 0, 0)
    assert await settle(controller) == {}
    assert "completions == parallelism" in controller.errors[-1]


async def test_other_strategies_are_left_alone(
    fake_api: FakeApi, controller: FakeJobSetController
) -> None:
    js = in_place_jobset()
    js["spec"]["failurePolicy"]["restartStrategy"] = "Recreate"
    fake_api.put(js)
    gang(fake_api, 0, 0, 0, 0)
    assert await settle(controller) == {} and writes(fake_api) == 0


async def test_a_burst_of_changes_is_one_reconcile_and_one_write(
    fake_api: FakeApi, controller: FakeJobSetController
) -> None:
    fake_api.put(in_place_jobset())
    await settle(controller)
    before = controller.reconciles
    gang(fake_api, 0, 0, 0, 0)  # four changes in one go
    assert await settle(controller) == {"currentInPlaceRestartAttempt": 0}
    # one for the four Pods, one for its own status write (which then writes nothing)
    assert controller.reconciles - before == 2 and writes(fake_api) == 1


async def test_a_paused_controller_catches_up(
    fake_api: FakeApi, controller: FakeJobSetController
) -> None:
    fake_api.put(in_place_jobset())
    controller.pause()
    gang(fake_api, 0, 0, 0, 0)
    assert await settle(controller) == {}
    controller.resume()
    assert await settle(controller) == {"currentInPlaceRestartAttempt": 0}


async def test_a_gang_restart_driven_over_http(
    fake_api: FakeApi, controller: FakeJobSetController
) -> None:
    """Four agents as JobSet's contract has them: each patches its own Pod's attempt; the
    one whose worker failed goes first; the others see previous reach theirs and restart."""
    fake_api.put(in_place_jobset())
    names = [f"js-rj-0-{i}" for i in range(PODS)]
    gang(fake_api, None, None, None, None)
    headers = {"Authorization": f"Bearer {fake_api.token}"}
    async with aiohttp.ClientSession(fake_api.url, headers=headers) as http:

        async def annotate(name: str, attempt: int) -> None:
            body = json.dumps({"metadata": {"annotations": {ATTEMPT: str(attempt)}}})
            kind = {"Content-Type": "application/strategic-merge-patch+json"}
            path = f"/api/v1/namespaces/default/pods/{name}"
            async with http.patch(path, data=body, headers=kind) as resp:
                assert resp.status == 200, await resp.text()

        for name in names:
            await annotate(name, 0)
        assert await settle(controller) == {"currentInPlaceRestartAttempt": 0}
        await annotate(names[2], 1)  # rank 2's worker failed
        assert (await settle(controller))["previousInPlaceRestartAttempt"] == 0
        for name in (names[0], names[1], names[3]):  # their agents exited, came back
            await annotate(name, 1)
        assert (await settle(controller))["currentInPlaceRestartAttempt"] == 1
    assert fake_api.counts("")["pods.patch"] == PODS + PODS  # start, then one gang restart
    assert writes(fake_api) == 3  # current 0; previous 0; current 1


def test_the_controller_runs_beside_a_threaded_fake() -> None:
    """How an end-to-end test gets the controller: on the ThreadedFakeApi's loop."""
    with ThreadedFakeApi() as threaded:
        threaded.api.delete("pods", "trainer")
        controller = FakeJobSetController(threaded.api)
        threaded.run(controller.start())
        threaded.api.put(in_place_jobset())
        gang(threaded.api, 0, 0, 0, 0)  # from this thread, as a kubelet model would
        for _ in range(200):
            js = threaded.api.get("jobsets", "js")
            if js and js.get("status"):
                break
            time.sleep(0.01)
        assert js is not None and js["status"] == {"currentInPlaceRestartAttempt": 0}
        assert threaded.api.errors == []
