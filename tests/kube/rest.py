"""The fake API's routes for the objects it keeps (`resources.RESOURCES`): get, list, watch,
create, update (PUT, optimistic concurrency on resourceVersion), merge and strategic merge
patch, and a JobSet's /status. A mixin of `FakeApi`, which provides the store, the lock and
`_answer` (authentication, the route's mode, validation, recording)."""

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tests.kube import api_answers as k8s
from tests.kube import resources as res
from tests.kube import watch_stream
from tests.kube.resources import Answer, Resource
from tests.kube.store import Obj, Selector, Store, Watcher

Then = Callable[[], Awaitable[web.StreamResponse]]


def _true(value: str | None) -> bool:
    """A boolean query parameter, as Go's strconv.ParseBool reads it (the client sends True)."""
    return value in ("1", "t", "T", "true", "TRUE", "True")


class ObjectRoutes:
    store: Store
    bookmark_interval: float
    _lock: threading.Lock
    _watch_events: Counter[str]
    _errors: list[str]

    def record(self, call: k8s.Call) -> None:
        raise NotImplementedError

    async def _answer(
        self,
        request: web.Request,
        route: str | None,
        body: Any,
        found: list[str],
        action: Callable[[], Answer],
        *,
        then: Then | None = None,
    ) -> web.StreamResponse:
        raise NotImplementedError

    def add_object_routes(self, app: web.Application) -> None:
        for resource in res.RESOURCES.values():
            every = f"{resource.prefix}/namespaces/{{ns}}/{resource.plural}"
            one = every + "/{name}"
            app.router.add_get(every, self._handler(self._list_or_watch, resource))
            app.router.add_post(every, self._handler(self._create, resource))
            app.router.add_get(one, self._handler(self._get, resource))
            app.router.add_put(one, self._handler(self._update, resource))
            app.router.add_patch(one, self._handler(self._patch, resource))
            if resource.status:
                app.router.add_get(one + "/status", self._handler(self._get, resource, True))
                app.router.add_put(one + "/status", self._handler(self._update, resource, True))
                app.router.add_patch(one + "/status", self._handler(self._patch, resource, True))

    def _handler(
        self, method: Callable[..., Awaitable[web.StreamResponse]], *args: Any
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await method(request, *args)

        return handle

    # -- what tests control and read (any thread) -----------------------------------------

    @property
    def watch_events(self) -> Counter[str]:
        """Events (bookmarks and errors included) written to watches, per watch route."""
        with self._lock:
            return Counter(self._watch_events)

    def watches(self, plural: str | None = None) -> int:
        """Watches open now (of ``plural``, or of anything)."""
        with self._lock:
            return len(self.store.watchers(plural))

    def drop_watches(self, plural: str | None = None) -> int:
        """Abort the connection of every open watch (of ``plural``) mid-stream; how many."""
        return self._order_watches("drop", plural)

    def end_watches(self, plural: str | None = None) -> int:
        """End every open watch cleanly, as its timeout would; how many."""
        return self._order_watches("end", plural)

    def freeze_watches(self, plural: str | None = None) -> int:
        """Hang every open watch (of ``plural``): no event, no bookmark, no end, until it is
        dropped or ended; how many."""
        return self._order_watches("freeze", plural)

    def _order_watches(self, order: str, plural: str | None) -> int:
        with self._lock:
            watchers = self.store.watchers(plural)
            for watcher in watchers:
                watcher.tell(order)
        return len(watchers)

    def compact(self) -> None:
        """Forget the history: a watch from any resourceVersion before now gets 410 Gone."""
        with self._lock:
            self.store.compact()

    # -- for in-process clients (a fake controller): its cache and its writes ----------------

    def select(self, plural: str, selects: Selector, namespace: str) -> list[Obj]:
        """What an informer's cache holds: the matching objects, read without a request."""
        with self._lock:
            return self.store.select(plural, namespace, selects)

    def write(self, obj: Obj, route: str, client: str) -> tuple[int, Obj]:
        """An update (a PUT of ``route``) by an in-process client, checked, under optimistic
        concurrency, and recorded as a request of ``client``."""
        resource, meta = res.resource_of(obj), obj["metadata"]
        path = f"{resource.prefix}/namespaces/{meta['namespace']}/{resource.plural}/{meta['name']}"
        path += "/status" if "/status." in route else ""
        found = res.problems(resource, obj, meta["namespace"], meta["name"])
        with self._lock:
            current = self.store.get(resource.plural, meta["namespace"], meta["name"])
            if found:
                self._errors += [f"PUT {path}: {p}" for p in found]
                answer: Answer = 422, k8s.status_body(422, "Invalid", "; ".join(found))
            elif current is None:
                answer = res.not_found(resource, meta["name"])
            elif res.stale(current, obj):
                answer = res.conflict(resource, meta["name"])
            else:
                new = res.updated(resource, current, obj, "/status." in route)
                answer = 200, self.store.put(resource.plural, new)[0]
        self.record(k8s.Call("PUT", path, route, answer[0], obj, time.monotonic(), client))
        return answer

    # -- reading -------------------------------------------------------------------------

    async def _get(
        self, request: web.Request, resource: Resource, status: bool = False
    ) -> web.StreamResponse:
        ns, name = request.match_info["ns"], request.match_info["name"]

        def read() -> Answer:
            obj = self.store.get(resource.plural, ns, name)
            return (200, obj) if obj is not None else res.not_found(resource, name)

        return await self._answer(request, resource.route("get", status), None, [], read)

    async def _list_or_watch(self, request: web.Request, resource: Resource) -> web.StreamResponse:
        ns, query = request.match_info["ns"], request.query
        selects = res.selector(query.get("fieldSelector", ""), query.get("labelSelector", ""))
        watch = _true(query.get("watch"))
        route = resource.route("watch" if watch else "list")
        if isinstance(selects, str):
            bad = 400, k8s.status_body(400, "BadRequest", selects)
            return await self._answer(request, route, None, [], lambda: bad)
        if not watch:

            def listed() -> Answer:
                items = self.store.select(resource.plural, ns, selects)
                return 200, res.list_body(resource, items, self.store.resource_version)

            return await self._answer(request, route, None, [], listed)
        watcher = Watcher(resource.plural, ns, selects, asyncio.get_running_loop())
        opened: list[watch_stream.WatchStart] = []

        def open_watch() -> Answer:
            opened.append(self._open(watcher, resource, query))
            return 200, {}

        async def serve() -> web.StreamResponse:
            try:
                feed = watch_stream.Feed(
                    self.bookmark_interval, self._current, lambda: self._count_event(route)
                )
                return await watch_stream.stream(request, opened[0], watcher, feed)
            finally:
                with self._lock:
                    self.store.close(watcher)

        return await self._answer(request, route, None, [], open_watch, then=serve)

    def _open(self, watcher: Watcher, resource: Resource, query: Any) -> watch_stream.WatchStart:
        """Under the lock: register the watch, then take its backlog (no change falls between)."""
        self.store.open(watcher)
        asked = query.get("resourceVersion", "")
        timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else None
        bookmarks = _true(query.get("allowWatchBookmarks"))
        now = self.store.resource_version
        if asked in ("", "0"):
            initial = self.store.select(resource.plural, watcher.namespace, watcher.selects)
            return watch_stream.WatchStart(resource, [], initial, now, bookmarks, timeout)
        backlog = self.store.since(watcher, int(asked))
        if backlog is None:
            self.store.close(watcher)
        return watch_stream.WatchStart(resource, backlog, [], now, bookmarks, timeout)

    def _current(self) -> int:
        with self._lock:
            return self.store.resource_version

    def _count_event(self, route: str) -> None:
        with self._lock:
            self._watch_events[route] += 1

    # -- writing -------------------------------------------------------------------------

    async def _create(self, request: web.Request, resource: Resource) -> web.StreamResponse:
        ns = request.match_info["ns"]
        body = await k8s.read_json(request)
        found = res.problems(resource, body, ns)

        def create() -> Answer:
            obj = res.created(resource, body, ns)
            name = obj["metadata"]["name"]
            if self.store.get(resource.plural, ns, name) is not None:
                return res.already_exists(resource, name)
            return 201, self.store.put(resource.plural, obj)[0]

        return await self._answer(request, resource.route("create"), body, found, create)

    async def _update(
        self, request: web.Request, resource: Resource, status: bool = False
    ) -> web.StreamResponse:
        ns, name = request.match_info["ns"], request.match_info["name"]
        body = await k8s.read_json(request)
        with self._lock:
            current = self.store.get(resource.plural, ns, name)
        new: Obj = {}
        found = res.problems(resource, body, ns, name)
        if current is not None and not found:
            new = res.updated(resource, current, body, status)
            found = res.problems(resource, new, ns, name)

        def update() -> Answer:
            now = self.store.get(resource.plural, ns, name)
            if now is None:
                return res.not_found(resource, name)
            if res.stale(now, body):
                return res.conflict(resource, name)
            fresh = new if now == current else res.updated(resource, now, body, status)
            return 200, self.store.put(resource.plural, fresh)[0]

        return await self._answer(request, resource.route("update", status), body, found, update)

    async def _patch(
        self, request: web.Request, resource: Resource, status: bool = False
    ) -> web.StreamResponse:
        ns, name = request.match_info["ns"], request.match_info["name"]
        patch = await k8s.read_json(request)
        route = resource.route("patch", status)
        with self._lock:
            current = self.store.get(resource.plural, ns, name)
        if current is None:
            return await self._answer(
                request, route, patch, [], lambda: res.not_found(resource, name)
            )
        merged, found, code = res.patched(resource, current, patch, request.content_type, status)
        found = found or res.problems(resource, merged, ns, name)
        if code == 415 and found:
            media = 415, k8s.status_body(415, "UnsupportedMediaType", found[0])
            return await self._answer(request, route, patch, [], lambda: media)

        def apply() -> Answer:
            now = self.store.get(resource.plural, ns, name)
            if now is None:
                return res.not_found(resource, name)
            if res.stale(now, patch):
                return res.conflict(resource, name)
            if now != current:  # changed since it was read: merge again onto the latest
                merged_now = res.patched(resource, now, patch, request.content_type, status)[0]
                return 200, self.store.put(resource.plural, merged_now)[0]
            return 200, self.store.put(resource.plural, merged)[0]

        return await self._answer(request, route, patch, found, apply)
