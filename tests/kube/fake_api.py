"""A fake Kubernetes API server for tests: the calls pod-watcher makes, and nothing else.

It serves Events (POST, merge PATCH), the Pod's eviction (POST) and, from a store with real
watch semantics (`store.py`, `rest.py`, `watch_stream.py`), Pods, ConfigMaps, Leases and
JobSets: get, list, watch (resourceVersion, bookmarks, 410 Gone, timeoutSeconds, field and
label selectors), create, update under optimistic concurrency (409 Conflict), merge and
strategic merge patch, and a JobSet's /status. It listens on 127.0.0.1 and a free port,
and serves `/version` and `/api`; any other path is answered 404 and recorded.

Every body is checked against the Kubernetes 1.35 JSON schemas (strict; a JobSet against
`jobset_schema.py`): a bad one is answered 422 like a real API server AND listed in
`errors`, which tests assert empty. Per route, a `Mode` makes it refuse like RBAC (403) or
a PodDisruptionBudget (429), fail (500), or never answer (stall, until it stops). A token
is required, as in a cluster.

`FakeApi` runs on the test's loop (`async with FakeApi() as api:`); `ThreadedFakeApi` runs
one in a thread with its own loop, for tests whose watcher is a child process. What tests
set and read (`set_mode`, `set_pod`, `calls`, `events`, `evictions`, `errors`) is
thread-safe, and so are the objects (`put`, `get`), the request counts (`counts`) and the
watch controls (`drop_watches`, `end_watches`, `freeze_watches`, `compact`).
`write_kubeconfig(path, api.url, api.token)` lets a client find it.
"""

import asyncio
import copy
import threading
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Self, TypeVar

from aiohttp import web

from tests.kube import api_answers as k8s
from tests.kube import resources as res
from tests.kube.api_answers import Call, Mode, Obj, write_kubeconfig
from tests.kube.event_routes import EventRoutes
from tests.kube.manifests import running_pod
from tests.kube.rest import ObjectRoutes, Then
from tests.kube.store import Change, Store
from tests.serving import LoopbackServer

__all__ = ["ROUTES", "STALLED", "Call", "FakeApi", "Mode", "ThreadedFakeApi", "write_kubeconfig"]

T = TypeVar("T")
ROUTES = ("events", "event", "eviction", *res.OBJECT_ROUTES)
"""POST an Event; PATCH an Event; POST the Pod's eviction; then ``<plural>.<verb>`` for the
kept objects (``leases.update``, ``jobsets/status.update``...), where GET of a Pod is ``pod``."""
STALLED = -1
"""The status recorded for a request left unanswered."""
Answer = tuple[int, Obj]
now = time.monotonic


class FakeApi(ObjectRoutes, EventRoutes):
    """Serves the Pod `trainer` (manifests/pod.yaml, running) in ``namespace``."""

    def __init__(
        self,
        token: str | None = "fake-token",
        namespace: str = "default",
        bookmark_interval: float = 1.0,
    ) -> None:
        self.token = token
        self.namespace = namespace
        self.url = ""
        self.bookmark_interval = bookmark_interval
        """Seconds between two bookmarks on a watch that allows them (a real server: ~60)."""
        self._lock = threading.Lock()
        self.store = Store()
        self.store.put("pods", running_pod("trainer", namespace))
        self._watch_events: Counter[str] = Counter()
        self._modes = dict.fromkeys(ROUTES, Mode.NORMAL)
        self._scripts: dict[str, deque[Mode]] = {route: deque() for route in ROUTES}
        self._calls: list[Call] = []
        self._events: dict[tuple[str, str], Obj] = {}
        self._evictions: list[Obj] = []
        self._errors: list[str] = []
        self._release: asyncio.Event | None = None
        self._server: LoopbackServer | None = None

    # -- what the test sets and reads (any thread) ---------------------------------------

    def set_mode(self, route: str, mode: Mode, *then: Mode) -> None:
        """``mode`` from now on; or, with ``then``, ``mode`` and ``then`` once each, in order,
        for the next requests (the lasting mode afterwards)."""
        assert route in ROUTES, route
        with self._lock:
            if then:
                self._scripts[route].extend((mode, *then))
            else:
                self._modes[route] = mode

    def set_pod(self, pod: Obj) -> None:
        """Serve ``pod`` (e.g. `running_pod(restarts=1)`, `restart_in_place(api.pod())`)."""
        self.put(pod)

    def pod(self, name: str = "trainer", namespace: str | None = None) -> Obj:
        found = self.get("pods", name, namespace)
        assert found is not None, f"no Pod {name}"
        return found

    def put(self, obj: Obj) -> Obj:
        """Create or replace ``obj`` (a Pod, ConfigMap, Lease or JobSet, status included)
        as the cluster would: a new resourceVersion, and an event for every watch of it."""
        resource = res.resource_of(obj)
        obj = copy.deepcopy(obj)
        obj["metadata"].setdefault("namespace", self.namespace)
        with self._lock:
            return self.store.put(resource.plural, obj)[0]

    def get(self, plural: str, name: str, namespace: str | None = None) -> Obj | None:
        with self._lock:
            return self.store.get(plural, namespace or self.namespace, name)

    def delete(self, plural: str, name: str, namespace: str | None = None) -> Obj | None:
        with self._lock:
            return self.store.delete(plural, namespace or self.namespace, name)

    @property
    def resource_version(self) -> int:
        with self._lock:
            return self.store.resource_version

    def counts(self, client: str | None = None) -> Counter[str]:
        """Requests per route (None for the unserved), of every client or only ``client``."""
        with self._lock:
            calls = [c for c in self._calls if client in (None, c.client)]
        return Counter(str(c.route) for c in calls)

    def listen(self, listener: Callable[[Change], None]) -> None:
        """Call ``listener`` after each change of an object, under the lock (never block)."""
        with self._lock:
            self.store.listen(listener)

    def record(self, call: Call) -> None:
        """Record a request an in-process fake made (it counts as API cost)."""
        with self._lock:
            self._calls.append(call)

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    @property
    def events(self) -> list[Obj]:
        """Events as stored (after patches), in the order they were created."""
        with self._lock:
            return copy.deepcopy(list(self._events.values()))

    @property
    def evictions(self) -> list[Obj]:
        with self._lock:
            return copy.deepcopy(self._evictions)

    @property
    def errors(self) -> list[str]:
        """Bodies a real API server would refuse, and requests without the token."""
        with self._lock:
            return list(self._errors)

    # -- the server --------------------------------------------------------------------

    async def start(self) -> str:
        self._release = asyncio.Event()
        app = web.Application()
        base = "/api/v1/namespaces/{ns}"
        self.add_object_routes(app)
        app.router.add_post(base + "/events", self._create_event)
        app.router.add_patch(base + "/events/{name}", self._patch_event)
        app.router.add_post(base + "/pods/{name}/eviction", self._evict)
        for path, answer in (("/version", k8s.VERSION_INFO), ("/api", k8s.API_VERSIONS)):
            app.router.add_get(path, self._static(answer))
            app.router.add_get(path + "/", self._static(answer))
        app.router.add_route("*", "/{tail:.*}", self._not_served)
        server = LoopbackServer(app, shutdown_timeout=2.0)
        self.url = f"http://127.0.0.1:{await server.start()}"
        self._server = server
        return self.url

    async def stop(self) -> None:
        """Answer stalled requests (503, to nobody by then) and close the port."""
        if self._release is not None:
            self._release.set()
        self.end_watches()
        if self._server is not None:
            server, self._server = self._server, None
            await server.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- routes ------------------------------------------------------------------------

    def _static(self, answer: Obj) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._answer(request, None, None, [], lambda: (200, answer))

        return handle

    async def _not_served(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, None, None, [], lambda: k8s.NOT_SERVED)

    # -- every request -----------------------------------------------------------------

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
        """Decide under the lock, record, answer (a 200 with ``then``: ``then()``, e.g. a
        watch's stream); a stalled request waits for `stop`."""
        with self._lock:
            self._errors += [f"{request.method} {request.path}: {p}" for p in found]
            answer = self._decide(request, route, found, action)
            status = STALLED if answer is None else answer[0]
            self._calls.append(Call(request.method, request.path, route, status, body, now()))
        if answer is None:
            assert self._release is not None
            await self._release.wait()
            answer = 503, k8s.status_body(503, "ServiceUnavailable", "the fake API stopped")
        if then is not None and answer[0] == 200:
            return await then()
        return web.json_response(answer[1], status=answer[0])

    def _decide(
        self,
        request: web.Request,
        route: str | None,
        found: list[str],
        action: Callable[[], Answer],
    ) -> Answer | None:
        """The API server's order: authentication, authorization (the mode), validation."""
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            self._errors.append(f"{request.method} {request.path}: no or wrong bearer token")
            return 401, k8s.status_body(401, "Unauthorized", "Unauthorized")
        mode = Mode.NORMAL
        if route is not None:
            script = self._scripts[route]
            mode = script.popleft() if script else self._modes[route]
        if mode is Mode.STALL:
            return None
        if mode is not Mode.NORMAL:
            info = request.match_info
            ns, name = info["ns"], info.get("name", "")
            return k8s.refusal(mode, request.method, request.path, ns, name, route=route)
        if found:
            return 422, k8s.status_body(422, "Invalid", "; ".join(found))
        return action()


class ThreadedFakeApi:
    """A `FakeApi` on its own event loop in a daemon thread; a context manager."""

    def __init__(self, token: str | None = "fake-token", namespace: str = "default") -> None:
        self.api = FakeApi(token, namespace)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-api", daemon=True)

    @property
    def url(self) -> str:
        return self.api.url

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the fake's loop (e.g. `FakeJobSetController(api).start()`)."""
        return self._call(coroutine)

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10.0)

    def __enter__(self) -> Self:
        self._thread.start()
        self._call(self.api.start())
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._call(self.api.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5.0)
            self._loop.close()
