"""The fake Kubernetes API, driven by kubernetes_asyncio as the watcher drives it: it serves,
validates, records, refuses on demand, and can be reached from another thread or process."""

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import kubernetes_validate
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from tests.kube.conftest import core_api
from tests.kube.fake_api import STALLED, FakeApi, Mode, ThreadedFakeApi, write_kubeconfig
from tests.kube.manifests import VERSIONS, WATCHER, Obj, restart_in_place, running_pod

T = TypeVar("T")
Core = Any
"""A `CoreV1Api`: its stubs want model objects, the watcher sends dicts (so do these tests)."""
NS = "default"
DEADLINE = 5.0


async def within(call: Awaitable[T], seconds: float = DEADLINE) -> T:
    async with asyncio.timeout(seconds):
        return await call


def event(**changes: Any) -> Obj:
    """An Event shaped as watcher/kube/events.py posts it."""
    involved = {"apiVersion": "v1", "kind": "Pod", "name": "trainer", "namespace": NS}
    body: Obj = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": "trainer.", "namespace": NS},
        "involvedObject": involved | {"fieldPath": "spec.initContainers{pod-watcher}"},
        "reason": "RestartingAllContainers",
        "message": "NcclWatchdogTimeout (transient): exiting 88",
        "type": "Warning",
        "source": {"component": "pod-watcher"},
        "reportingComponent": "pod-watcher",
        "reportingInstance": "trainer",
        "firstTimestamp": "2026-11-26T10:00:00Z",
        "lastTimestamp": "2026-11-26T10:00:00Z",
        "count": 1,
    }
    return body | changes


EVICTION = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "trainer"}}


async def refused(call: Awaitable[object]) -> ApiException:
    with pytest.raises(ApiException) as caught:
        await within(call)
    return caught.value


@pytest.mark.parametrize("version", VERSIONS)
def test_the_served_pods_are_valid(version: str) -> None:
    for pod in (running_pod(), restart_in_place(running_pod(restarts=2))):
        kubernetes_validate.validate(pod, version, strict=True)


async def test_serves_the_pod_from_the_manifest(fake_api: FakeApi, core: Core) -> None:
    pod = await within(core.read_namespaced_pod("trainer", NS))
    watcher = pod.status.init_container_statuses[0]
    assert (watcher.name, watcher.restart_count) == (WATCHER, 0)
    assert watcher.state.running.started_at is not None
    assert pod.spec.init_containers[0].restart_policy_rules[0].action == "RestartAllContainers"
    fake_api.set_pod(restart_in_place(fake_api.pod()))
    pod = await within(core.read_namespaced_pod("trainer", NS))
    statuses = [*pod.status.init_container_statuses, *pod.status.container_statuses]
    assert [s.restart_count for s in statuses] == [1, 1]
    assert pod.status.init_container_statuses[0].last_state.terminated.exit_code == 88
    assert (await refused(core.read_namespaced_pod("other", NS))).status == 404
    assert fake_api.errors == []


async def test_records_a_valid_event(fake_api: FakeApi, core: Core) -> None:
    created = await within(core.create_namespaced_event(NS, event()))
    assert created.metadata.name.startswith("trainer.") and created.metadata.uid
    patched = await within(core.patch_namespaced_event(created.metadata.name, NS, {"count": 2}))
    assert patched.count == 2
    (stored,) = fake_api.events
    assert (stored["reason"], stored["count"]) == ("RestartingAllContainers", 2)
    assert [(c.method, c.status) for c in fake_api.calls] == [("POST", 201), ("PATCH", 200)]
    assert fake_api.errors == []


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (event(bogus=1), "'bogus' was unexpected"),
        (event(count="one"), "count: 'one' is not of type"),
        (event(metadata={"namespace": NS}), "name or generateName is required"),
        (event(metadata={"generateName": "trainer.", "namespace": "other"}), "namespace"),
        (event(apiVersion="events.k8s.io/v1"), "posted as events.k8s.io/v1 Event"),
    ],
)
async def test_refuses_and_records_a_bad_event(
    fake_api: FakeApi, core: Core, body: Obj, needle: str
) -> None:
    error = await refused(core.create_namespaced_event(NS, body))
    assert error.status == 422
    assert json.loads(error.body or b"")["reason"] == "Invalid"
    (problem,) = fake_api.errors
    assert needle in problem, problem
    assert fake_api.events == []


async def test_a_bad_patch_is_an_error_too(fake_api: FakeApi, core: Core) -> None:
    created = await within(core.create_namespaced_event(NS, event()))
    error = await refused(core.patch_namespaced_event(created.metadata.name, NS, {"count": "x"}))
    assert error.status == 422 and len(fake_api.errors) == 1
    assert (await refused(core.patch_namespaced_event("gone", NS, {"count": 2}))).status == 404


async def test_evicts_the_pod(fake_api: FakeApi, core: Core) -> None:
    await within(core.create_namespaced_pod_eviction("trainer", NS, EVICTION))
    assert fake_api.evictions == [EVICTION]
    pod = fake_api.pod()
    assert pod["metadata"]["deletionTimestamp"]
    assert {"DisruptionTarget"} <= {c["type"] for c in pod["status"]["conditions"]}
    assert fake_api.errors == []


async def test_refuses_and_records_a_bad_eviction(fake_api: FakeApi, core: Core) -> None:
    wrong = {**EVICTION, "metadata": {"name": "someone-else"}}
    assert (await refused(core.create_namespaced_pod_eviction("trainer", NS, wrong))).status == 422
    assert fake_api.evictions == []
    assert ["does not match" in problem for problem in fake_api.errors] == [True]


CALLS = {
    "pod": lambda core: core.read_namespaced_pod("trainer", NS),
    "events": lambda core: core.create_namespaced_event(NS, event()),
    "eviction": lambda core: core.create_namespaced_pod_eviction("trainer", NS, EVICTION),
}


@pytest.mark.parametrize("route", CALLS)
@pytest.mark.parametrize(
    ("mode", "answer"),
    [
        (Mode.FORBIDDEN, (403, "Forbidden")),
        (Mode.TOO_MANY, (429, "TooManyRequests")),
        (Mode.ERROR, (500, "InternalError")),
    ],
)
async def test_modes(
    fake_api: FakeApi, core: Core, route: str, mode: Mode, answer: tuple[int, str]
) -> None:
    fake_api.set_mode(route, mode)
    error = await refused(CALLS[route](core))
    body = json.loads(error.body or b"")
    assert (error.status, body["code"], body["reason"]) == (answer[0], *answer)
    assert (body["kind"], body["status"]) == ("Status", "Failure")
    if mode is Mode.FORBIDDEN:
        assert "system:serviceaccount:default:pod-watcher" in body["message"]
    if (route, mode) == ("eviction", Mode.TOO_MANY):
        assert body["details"]["causes"][0]["reason"] == "DisruptionBudget"
    assert [c.status for c in fake_api.calls] == [answer[0]]
    assert fake_api.errors == [] and fake_api.evictions == [] and fake_api.events == []


async def test_scripted_modes_then_normal(fake_api: FakeApi, core: Core) -> None:
    fake_api.set_mode("eviction", Mode.TOO_MANY, Mode.ERROR)
    for status in (429, 500):
        assert (await refused(CALLS["eviction"](core))).status == status
    await within(CALLS["eviction"](core))
    assert [c.status for c in fake_api.calls] == [429, 500, 201]


async def test_stall_until_stopped(fake_api: FakeApi, core: Core) -> None:
    fake_api.set_mode("pod", Mode.STALL)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await within(core.read_namespaced_pod("trainer", NS), 0.2)
    assert 0.2 <= time.monotonic() - started < 2.0
    assert [(c.route, c.status) for c in fake_api.calls] == [("pod", STALLED)]
    await within(fake_api.stop())


async def test_a_wrong_token_is_refused(fake_api: FakeApi, tmp_path: Path) -> None:
    api_client, core = await core_api(write_kubeconfig(tmp_path / "k", fake_api.url, "stolen"))
    async with api_client:
        assert (await refused(core.read_namespaced_pod("trainer", NS))).status == 401
    assert fake_api.errors == [
        "GET /api/v1/namespaces/default/pods/trainer: no or wrong bearer token"
    ]


async def test_other_paths_are_404_and_recorded(fake_api: FakeApi, core: Core) -> None:
    assert (await refused(core.delete_namespaced_pod("trainer", NS))).status == 404
    assert (await refused(core.list_namespaced_secret(NS))).status == 404
    assert [(c.method, c.route, c.status) for c in fake_api.calls] == [
        ("DELETE", None, 404),
        ("GET", None, 404),
    ]
    version = await within(client.VersionApi(core.api_client).get_code())
    assert version.git_version == "v1.35.0"


async def test_from_another_thread(tmp_path: Path) -> None:
    with ThreadedFakeApi() as threaded:
        assert threaded.api.token is not None
        path = write_kubeconfig(tmp_path / "k", threaded.url, threaded.api.token)
        api_client, core = await core_api(path)
        async with api_client:
            threaded.api.set_mode("events", Mode.FORBIDDEN)
            assert (await refused(core.create_namespaced_event(NS, event()))).status == 403
            await within(core.create_namespaced_pod_eviction("trainer", NS, EVICTION))
        assert len(threaded.api.evictions) == 1 and threaded.api.errors == []


CHILD = """
import asyncio
from kubernetes_asyncio import client, config

async def main():
    await config.load_kube_config()  # KUBECONFIG
    async with client.ApiClient() as api:
        pod = await client.CoreV1Api(api).read_namespaced_pod("trainer", "default")
        print(pod.status.init_container_statuses[0].restart_count)

asyncio.run(asyncio.wait_for(main(), 10))
"""


def test_from_a_child_process(tmp_path: Path) -> None:
    """How an end-to-end test hands the fake to `pod-watcher run`: KUBECONFIG."""
    with ThreadedFakeApi() as threaded:
        assert threaded.api.token is not None
        threaded.api.set_pod(running_pod(restarts=3))
        path = write_kubeconfig(tmp_path / "k", threaded.url, threaded.api.token)
        result = subprocess.run(
            [sys.executable, "-c", CHILD],
            env={**os.environ, "KUBECONFIG": str(path)},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert (result.returncode, result.stdout.strip()) == (0, "3"), result.stderr
        assert [c.status for c in threaded.api.calls] == [200]
