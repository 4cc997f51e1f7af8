"""The aggregator of the standalone gang: the watcher of index 0 lists and watches the
gang's Pods by label (one watch, N events per gang restart, never one per peer), and once
``size`` Pods carry the Lease's generation G it writes `pod-watcher/barrier-generation: G`
on the Lease (one PUT under optimistic concurrency; a 409 reads again). It keeps no
state: a restarted aggregator lists again. Every request is under the API timeout."""

import asyncio
import copy
import json
import logging
import random
from typing import Any

from watcher.kube.client import ApiError
from watcher.kube.generation import generation_of
from watcher.kube.watch import (
    Obj,
    ObjectRef,
    ObjectWatch,
    Transport,
    WatchConfig,
    reason_of,
    watch_events,
)

log = logging.getLogger(__name__)

BARRIER = "pod-watcher/barrier-generation"
"""On the Lease: the last generation every Pod of the gang reached."""
ARRIVAL = "pod-watcher/generation"
"""On each Pod: the generation its watcher started at (its arrival)."""


def barrier_of(obj: Obj | None) -> int | None:
    raw = ((obj or {}).get("metadata", {}).get("annotations") or {}).get(BARRIER)
    return int(raw) if isinstance(raw, str) and raw.isdigit() else None


def arrival_of(pod: Obj) -> int | None:
    if (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded"):
        return None
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(ARRIVAL)
    return int(raw) if isinstance(raw, str) and raw.isdigit() else None


class Aggregator:
    def __init__(
        self,
        api_client: Any,
        ref: ObjectRef,
        lease_watch: ObjectWatch,
        *,
        selector: str,
        size: int,
        config: WatchConfig,
    ) -> None:
        self._http = Transport(api_client, config.api_timeout)
        self._ref = ref
        self._lease = lease_watch
        self._selector = selector
        self._size = size
        self._config = config
        self.arrivals: dict[str, int] = {}
        self.writes = 0
        self._rv: str | None = None
        self._changed = asyncio.Event()

    def lease_changed(self) -> None:
        self._changed.set()

    async def run(self) -> None:
        writer = asyncio.create_task(self._writer(), name="gang-barrier-writer")
        backoff = self._config.backoff_initial
        try:
            while True:
                try:
                    await self._round()
                    backoff = self._config.backoff_initial
                except ApiError as exc:
                    log.warning("gang aggregator: %s", exc)
                    await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                    backoff = min(backoff * 2, self._config.backoff_max)
        finally:
            writer.cancel()

    async def _round(self) -> None:
        pods = f"/api/v1/namespaces/{self._ref.namespace}/pods"
        if self._rv is None:
            status, body = await self._http.request("GET", pods, {"labelSelector": self._selector})
            if status != 200:
                raise ApiError(f"list pods: {status} {reason_of(json.dumps(body))}", status)
            self._rv = str(body["metadata"]["resourceVersion"])
            self.arrivals = {}
            for pod in body.get("items") or []:
                self._note("ADDED", pod)
            self._changed.set()
        await self._watch(pods)

    async def _watch(self, path: str) -> None:
        timeout = self._config.watch_timeout
        query = {"watch": "true", "resourceVersion": str(self._rv), "labelSelector": self._selector,
                 "allowWatchBookmarks": "true", "timeoutSeconds": str(timeout)}  # fmt: skip
        resp = await self._http.open(path, query, timeout)
        loop = asyncio.get_running_loop()
        try:
            deadline = loop.time() + timeout + self._config.api_timeout
            async for event in watch_events(resp, deadline, loop.time):
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    self._rv = None  # 410 Gone or worse: list again
                    return
                self._rv = str((obj.get("metadata") or {}).get("resourceVersion") or self._rv)
                if kind != "BOOKMARK" and self._note(str(kind), obj):
                    self._changed.set()
        finally:
            resp.release()

    def _note(self, kind: str, pod: Obj) -> bool:
        name = str((pod.get("metadata") or {}).get("name"))
        arrival = None if kind == "DELETED" else arrival_of(pod)
        before = self.arrivals.get(name)
        if arrival is None:
            self.arrivals.pop(name, None)
        else:
            self.arrivals[name] = arrival
        return before != arrival

    async def _writer(self) -> None:
        """Write the barrier whenever the arrivals or the Lease changed and it is due."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                await self._maybe_write()
            except ApiError as exc:
                log.warning("gang aggregator: cannot write the barrier: %s", exc)
                await asyncio.sleep(self._config.backoff_initial)
                self._changed.set()

    async def _maybe_write(self) -> None:
        latest = self._lease.latest
        if latest is None:
            return  # the Lease was not read yet
        obj = latest.obj
        generation = generation_of(obj)
        arrived = sum(1 for g in self.arrivals.values() if g == generation)
        if arrived < self._size or barrier_of(obj) == generation:
            return
        status, body = await self._put(obj, generation)
        if status == 409:  # the Lease moved meanwhile: its watch brings the new one
            return
        if status not in (200, 201):
            raise ApiError(f"barrier: {status} {reason_of(json.dumps(body))}", status)
        self.writes += 1
        log.info("gang: every Pod reached generation %d: barrier lifted", generation)

    async def _put(self, obj: Obj | None, generation: int) -> tuple[int, Any]:
        ref = self._ref
        new: Obj = copy.deepcopy(obj) if obj else {"apiVersion": ref.api_version, "kind": ref.kind}
        meta: Obj = new.setdefault("metadata", {"name": ref.name, "namespace": ref.namespace})
        meta["annotations"] = {**(meta.get("annotations") or {}), BARRIER: str(generation)}
        if obj is None:
            return await self._http.request("POST", ref.path(item=False), body=new)
        return await self._http.request("PUT", ref.path(), body=new)
