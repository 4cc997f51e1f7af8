"""The fake API's objects and watches, driven over real HTTP: by kubernetes_asyncio as the
watcher drives it, and by plain aiohttp where a test reads a watch line by line."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import aiohttp
import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from tests.kube.fake_api import STALLED, FakeApi, Mode
from tests.kube.fake_jobset import in_place_jobset as jobset
from tests.kube.store import Store, Watcher

T = TypeVar("T")
NS = "default"
LEASES = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
JOBSETS = "/apis/jobset.x-k8s.io/v1alpha2/namespaces/default/jobsets"


def lease(name: str = "gang", holder: str = "trainer-0", **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, **meta},
        "spec": {"holderIdentity": holder},
    }


async def within(call: Awaitable[T], seconds: float = 5.0) -> T:
    async with asyncio.timeout(seconds):
        return await call


async def refused(call: Awaitable[object]) -> ApiException:
    with pytest.raises(ApiException) as caught:
        await within(call)
    return caught.value


@pytest.fixture
async def http(fake_api: FakeApi) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {fake_api.token}"}
    async with aiohttp.ClientSession(fake_api.url, headers=headers) as session:
        yield session


async def watch_lines(
    http: aiohttp.ClientSession, path: str, count: int, **query: str
) -> list[dict[str, Any]]:
    """The first ``count`` events of a watch (fewer if it ends), within 5 s."""
    events: list[dict[str, Any]] = []
    async with http.get(path, params={"watch": "true", **query}) as resp:
        assert resp.status == 200
        while len(events) < count:
            line = await within(resp.content.readline())
            if not line:
                break
            events.append(json.loads(line))
    return events


async def test_lease_create_update_and_conflict(fake_api: FakeApi, core: Any) -> None:
    leases: Any = client.CoordinationV1Api(core.api_client)  # its stubs want models
    made = await within(leases.create_namespaced_lease(NS, lease()))
    first = made.metadata.resource_version
    assert made.metadata.uid and made.metadata.namespace == NS
    body = lease(resourceVersion=first, holder="trainer-1")
    updated = await within(leases.replace_namespaced_lease("gang", NS, body))
    assert int(updated.metadata.resource_version) > int(first)
    error = await refused(leases.replace_namespaced_lease("gang", NS, body))  # first is stale
    status = json.loads(error.body or b"")
    assert (error.status, status["reason"]) == (409, "Conflict")
    assert 'leases.coordination.k8s.io "gang"' in status["message"]
    assert status["details"] == {"name": "gang", "kind": "leases", "group": "coordination.k8s.io"}
    again = lease(resourceVersion=updated.metadata.resource_version, holder="trainer-1")
    same = await within(leases.replace_namespaced_lease("gang", NS, again))
    assert same.metadata.resource_version == updated.metadata.resource_version  # no change
    error = await refused(leases.create_namespaced_lease(NS, lease()))
    assert json.loads(error.body or b"")["reason"] == "AlreadyExists"
    assert fake_api.counts()["leases.update"] == 3 and fake_api.errors == []


async def test_configmap_patches_and_precondition(fake_api: FakeApi, core: Any) -> None:
    body = {"metadata": {"name": "gang"}, "data": {"generation": "0", "keep": "x"}}
    made = await within(core.create_namespaced_config_map(NS, body))
    patched = await within(
        core.patch_namespaced_config_map("gang", NS, {"data": {"generation": "1"}})
    )
    assert patched.data == {"generation": "1", "keep": "x"}
    merge = await within(core.patch_namespaced_config_map(
        "gang", NS, {"data": {"keep": None}}, _content_type="application/merge-patch+json"
    ))  # fmt: skip
    assert merge.data == {"generation": "1"}
    stale = {"metadata": {"resourceVersion": made.metadata.resource_version}, "data": {"a": "b"}}
    assert (await refused(core.patch_namespaced_config_map("gang", NS, stale))).status == 409
    bad = {"data": {"generation": 2}}  # a ConfigMap's data holds strings
    assert (await refused(core.patch_namespaced_config_map("gang", NS, bad))).status == 422
    assert len(fake_api.errors) == 1 and "generation" in fake_api.errors[0]


async def test_pod_annotation_patch(fake_api: FakeApi, core: Any) -> None:
    key = "jobset.sigs.k8s.io/in-place-restart-attempt"
    before = fake_api.pod()["metadata"]["resourceVersion"]
    pod = await within(
        core.patch_namespaced_pod("trainer", NS, {"metadata": {"annotations": {key: "1"}}})
    )
    assert pod.metadata.annotations == {key: "1"}
    assert int(pod.metadata.resource_version) > int(before)
    merge = {"metadata": {"labels": {"gang": "a"}}}
    await within(
        core.patch_namespaced_pod(
            "trainer", NS, merge, _content_type="application/merge-patch+json"
        )
    )
    assert fake_api.pod()["metadata"]["labels"]["gang"] == "a"
    wrong = {"metadata": {"annotations": {key: 2}}}  # annotations are strings
    assert (await refused(core.patch_namespaced_pod("trainer", NS, wrong))).status == 422
    spec = {"spec": {"activeDeadlineSeconds": 5}}
    assert (await refused(core.patch_namespaced_pod("trainer", NS, spec))).status == 422
    assert len(fake_api.errors) == 2
    assert fake_api.counts()["pods.patch"] == 4


async def test_list_then_watch_from_its_resource_version(
    fake_api: FakeApi, http: aiohttp.ClientSession
) -> None:
    fake_api.put(lease("gang"))
    fake_api.put(lease("other"))
    async with http.get(LEASES, params={"fieldSelector": "metadata.name=gang"}) as resp:
        listed = await resp.json()
    assert listed["kind"] == "LeaseList" and [i["metadata"]["name"] for i in listed["items"]] == [
        "gang"
    ]
    since = listed["metadata"]["resourceVersion"]
    fake_api.put(lease("gang", holder="b"))
    fake_api.put(lease("other", holder="b"))  # not selected
    fake_api.put(lease("gang", holder="c"))
    query = {"resourceVersion": since, "fieldSelector": "metadata.name=gang"}
    events = await watch_lines(http, LEASES, 2, **query)
    assert [(e["type"], e["object"]["spec"]["holderIdentity"]) for e in events] == [
        ("MODIFIED", "b"),
        ("MODIFIED", "c"),
    ]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert int(since) < rvs[0] < rvs[1] == fake_api.resource_version


async def test_watch_without_resource_version_starts_with_added(
    fake_api: FakeApi, http: aiohttp.ClientSession
) -> None:
    fake_api.put(lease("gang"))
    events = await watch_lines(http, LEASES, 1, fieldSelector="metadata.name=gang")
    assert [e["type"] for e in events] == ["ADDED"]


async def test_bookmarks_carry_the_current_resource_version(
    fake_api: FakeApi, http: aiohttp.ClientSession
) -> None:
    fake_api.bookmark_interval = 0.1
    fake_api.put(lease("gang"))
    now = str(fake_api.resource_version)
    events = await watch_lines(http, LEASES, 2, resourceVersion=now, allowWatchBookmarks="true")
    assert [e["type"] for e in events] == ["BOOKMARK", "BOOKMARK"]
    assert events[0]["object"]["metadata"]["resourceVersion"] == now
    assert events[0]["object"]["kind"] == "Lease"
    assert fake_api.watch_events["leases.watch"] == 2


async def test_too_old_resource_version_is_410(
    fake_api: FakeApi, http: aiohttp.ClientSession
) -> None:
    fake_api.put(lease("gang"))
    old = str(fake_api.resource_version)
    fake_api.put(lease("gang", holder="b"))
    fake_api.compact()
    (error,) = await watch_lines(http, LEASES, 5, resourceVersion=old)
    assert error["type"] == "ERROR"
    assert (error["object"]["code"], error["object"]["reason"]) == (410, "Expired")
    assert fake_api.watches() == 0


def test_the_store_forgets_past_its_history() -> None:
    store = Store(history=3)
    for holder in "abcde":
        store.put("leases", lease(holder=holder) | {"metadata": {"name": "gang", "namespace": NS}})
    watcher = Watcher("leases", NS, lambda _: True, asyncio.new_event_loop())
    assert store.since(watcher, 1) is None  # changes 2..5 were asked; 2 is gone
    assert [c.resource_version for c in store.since(watcher, 2) or []] == [3, 4, 5]
    watcher.loop.close()


async def test_timeout_seconds_ends_the_stream(
    fake_api: FakeApi, http: aiohttp.ClientSession
) -> None:
    started = time.monotonic()
    events = await watch_lines(http, LEASES, 5, resourceVersion="1", timeoutSeconds="1")
    assert events == [] and 1.0 <= time.monotonic() - started < 3.0


async def test_a_watch_dropped_mid_stream(fake_api: FakeApi, http: aiohttp.ClientSession) -> None:
    async with http.get(LEASES, params={"watch": "true", "resourceVersion": "1"}) as resp:
        await within(_until(lambda: fake_api.watches("leases") == 1))
        assert fake_api.drop_watches() == 1
        with pytest.raises(aiohttp.ClientPayloadError):
            await within(resp.content.readline())
    await within(_until(lambda: fake_api.watches() == 0))


async def _until(condition: Any) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not within 5 s")


@pytest.mark.parametrize(("mode", "status"), [(Mode.FORBIDDEN, 403), (Mode.ERROR, 500)])
async def test_modes_on_a_watch(
    fake_api: FakeApi, http: aiohttp.ClientSession, mode: Mode, status: int
) -> None:
    fake_api.set_mode("jobsets.watch", mode)
    async with http.get(JOBSETS, params={"watch": "true"}) as resp:
        body = await resp.json()
    assert (resp.status, body["code"]) == (status, status)
    if mode is Mode.FORBIDDEN:
        assert 'cannot watch resource "jobsets" in API group "jobset.x-k8s.io"' in body["message"]


async def test_a_stalled_watch_never_answers(
    fake_api: FakeApi, http: aiohttp.ClientSession
) -> None:
    fake_api.set_mode("leases.watch", Mode.STALL)
    with pytest.raises(TimeoutError):
        await within(http.get(LEASES, params={"watch": "true"}), 0.3)
    assert [(c.route, c.status) for c in fake_api.calls] == [("leases.watch", STALLED)]


async def test_a_bad_field_selector_is_400(fake_api: FakeApi, http: aiohttp.ClientSession) -> None:
    async with http.get(LEASES, params={"fieldSelector": "spec.holderIdentity=a"}) as resp:
        assert resp.status == 400
        assert "field label not supported" in (await resp.json())["message"]


async def test_jobset_status_subresource(fake_api: FakeApi, core: Any) -> None:
    custom: Any = client.CustomObjectsApi(core.api_client)
    args = ("jobset.x-k8s.io", "v1alpha2", NS, "jobsets", "js")
    stored = fake_api.put(jobset())
    changed = jobset(currentInPlaceRestartAttempt=0) | {"metadata": stored["metadata"]}
    after = await within(custom.replace_namespaced_custom_object_status(*args, changed))
    assert after["status"] == {"currentInPlaceRestartAttempt": 0}
    ignored = jobset(currentInPlaceRestartAttempt=5) | {"metadata": after["metadata"]}
    main = await within(custom.replace_namespaced_custom_object(*args, ignored))
    assert main["status"] == {"currentInPlaceRestartAttempt": 0}  # the object's PUT keeps status
    bad = jobset(previousInPlaceRestartAttempt=-1)
    assert (await refused(custom.replace_namespaced_custom_object_status(*args, bad))).status == 422
    assert any("previousInPlaceRestartAttempt" in e for e in fake_api.errors)
    read = await within(custom.get_namespaced_custom_object_status(*args))
    assert read["status"] == {"currentInPlaceRestartAttempt": 0}


async def test_jobset_schema_refuses_unknown_status_fields(fake_api: FakeApi, core: Any) -> None:
    custom: Any = client.CustomObjectsApi(core.api_client)
    fake_api.put(jobset())
    args = ("jobset.x-k8s.io", "v1alpha2", NS, "jobsets", "js")
    patch = {"status": {"inPlaceRestartAttempt": 1}}
    error = await refused(custom.patch_namespaced_custom_object_status(
        *args, patch, _content_type="application/merge-patch+json"
    ))  # fmt: skip
    assert error.status == 422 and "inPlaceRestartAttempt" in fake_api.errors[0]
    error = await refused(custom.patch_namespaced_custom_object_status(
        *args, patch, _content_type="application/strategic-merge-patch+json"
    ))  # fmt: skip
    assert error.status == 415  # a custom resource takes no strategic merge patch


async def test_kubernetes_asyncio_watch_reads_the_stream(fake_api: FakeApi, core: Any) -> None:
    fake_api.put({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gang"}})
    since = str(fake_api.resource_version)
    fake_api.put(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gang"}, "data": {"g": "1"}}
    )
    async with watch.Watch() as stream:
        events = stream.stream(
            core.list_namespaced_config_map, NS, resource_version=since, timeout_seconds=1,
            field_selector="metadata.name=gang",
        )  # fmt: skip
        seen = [(e["type"], e["object"].data) async for e in events]
    assert seen == [("MODIFIED", {"g": "1"})]
