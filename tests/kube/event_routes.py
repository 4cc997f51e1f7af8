"""The fake API's routes for Events (POST, merge PATCH) and the Pod's eviction (POST): a
mixin of `FakeApi`, which provides the store, the lock and `_answer`."""

import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.kube import api_answers as k8s
from tests.kube.store import Obj, Store

Answer = tuple[int, Obj]


class EventRoutes:
    store: Store
    _lock: threading.Lock
    _calls: list[Any]
    _events: dict[tuple[str, str], Obj]
    _evictions: list[Obj]

    async def _answer(
        self,
        request: web.Request,
        route: str | None,
        body: Any,
        found: list[str],
        action: Callable[[], Answer],
    ) -> web.StreamResponse:
        raise NotImplementedError

    async def _create_event(self, request: web.Request) -> web.StreamResponse:
        ns = request.match_info["ns"]
        body = await k8s.read_json(request)

        def create() -> Answer:
            event = k8s.created_event(ns, body, str(len(self._calls)))
            if (ns, event["metadata"]["name"]) in self._events:
                return k8s.conflict("events", event["metadata"]["name"])
            self._events[(ns, event["metadata"]["name"])] = event
            return 201, event

        found = k8s.problems(body, "v1", "Event", ns)
        return await self._answer(request, "events", body, found, create)

    async def _patch_event(self, request: web.Request) -> web.StreamResponse:
        key = (request.match_info["ns"], request.match_info["name"])
        patch = await k8s.read_json(request)
        with self._lock:
            current = self._events.get(key)
        merged: Obj = {}
        found = []
        if current is not None and not isinstance(patch, dict):
            found = ["the fake takes merge patches (a JSON object) only"]
        elif current is not None:
            merged = k8s.merge(current, patch)
            found = k8s.problems(merged, "v1", "Event", key[0], key[1])

        def put() -> Answer:
            if key not in self._events:
                return k8s.not_found("events", key[1])
            self._events[key] = merged
            return 200, merged

        return await self._answer(request, "event", patch, found, put)

    async def _evict(self, request: web.Request) -> web.StreamResponse:
        key = (request.match_info["ns"], request.match_info["name"])
        body = await k8s.read_json(request)

        def evict() -> Answer:
            pod = self.store.get("pods", *key)
            if pod is None:
                return k8s.not_found("pods", key[1])
            self._evictions.append(body)
            self.store.put("pods", k8s.evicted(pod))
            return k8s.SUCCESS

        found = k8s.problems(body, "policy/v1", "Eviction", key[0], key[1])
        return await self._answer(request, "eviction", body, found, evict)
