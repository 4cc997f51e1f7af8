"""Follow one named object (a JobSet, a Lease, a ConfigMap) through the API, with deadlines,
and bump a restart generation held in one.

`ObjectWatch` lists the object by name (``fieldSelector=metadata.name=...``), then watches
from the list's resourceVersion with bookmarks and a server-side ``timeoutSeconds``; a watch
that ends is resumed from the last resourceVersion seen, one that is dropped, stalls or
fails is resumed after a back-off, and a 410 Gone means listing again. Every request is
under the API timeout, and so is the silence allowed past the watch's own timeout. It yields
a `Version` for each new state of the object (None: it does not exist) and a `Lost` once
when the API has been out of reach for ``lost_after`` seconds (at once when it refuses with
401/403); the first `Version` after a `Lost` says contact is back. It never ends by itself.

`watcher/kube/generation.py` bumps the restart generation such an object holds.

The Kubernetes client is passed in (an ``ApiClient``); aiohttp's errors are caught here.
"""

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from watcher.kube.client import ApiError

log = logging.getLogger(__name__)

Obj = dict[str, Any]
MAX_LINE = 8 << 20
"""Longest watch event accepted (a JobSet with large templates is tens of KiB)."""


@dataclass(frozen=True)
class ObjectRef:
    api_version: str
    kind: str
    plural: str
    namespace: str
    name: str

    def path(self, *, item: bool = True) -> str:
        group = "api" if "/" not in self.api_version else "apis"
        every = f"/{group}/{self.api_version}/namespaces/{self.namespace}/{self.plural}"
        return f"{every}/{self.name}" if item else every


def jobset(namespace: str, name: str) -> ObjectRef:
    return ObjectRef("jobset.x-k8s.io/v1alpha2", "JobSet", "jobsets", namespace, name)


def lease(namespace: str, name: str) -> ObjectRef:
    return ObjectRef("coordination.k8s.io/v1", "Lease", "leases", namespace, name)


def configmap(namespace: str, name: str) -> ObjectRef:
    return ObjectRef("v1", "ConfigMap", "configmaps", namespace, name)


@dataclass(frozen=True)
class WatchConfig:
    api_timeout: float = 2.0
    """Deadline of each request, and of the silence allowed past ``watch_timeout``."""
    watch_timeout: int = 60
    """``timeoutSeconds`` of each watch: a silent stalled watch is found within this plus
    ``api_timeout``; each costs one request per this many seconds while all is well."""
    backoff_initial: float = 0.2
    backoff_max: float = 5.0
    lost_after: float = 10.0
    """Without contact this long (a stalled or failing API), `Lost` is yielded."""


@dataclass(frozen=True)
class Version:
    obj: Obj | None
    """The object as it is now; None when it does not exist."""
    resource_version: str


@dataclass(frozen=True)
class Lost:
    reason: str
    since: float
    """`time.monotonic()` of the last contact."""


Update = Version | Lost


class Transport:
    """Requests through a kubernetes_asyncio ``ApiClient``, each under ``timeout``."""

    def __init__(self, api_client: Any, timeout: float) -> None:
        self._client = api_client
        self.timeout = timeout

    async def request(
        self, method: str, path: str, query: Mapping[str, str] | None = None, body: Any = None
    ) -> tuple[int, Any]:
        """(status, JSON body) of one request; raises ApiError when no answer came in time."""
        try:
            async with asyncio.timeout(self.timeout):
                resp = await self._send(method, path, query or {}, body, self.timeout)
                try:
                    data = await resp.read()
                finally:
                    resp.release()
        except TimeoutError:
            raise ApiError(f"{method} {path}: no answer within {self.timeout:g}s") from None
        except (OSError, aiohttp.ClientError) as exc:
            raise ApiError(f"{method} {path}: {exc}") from None
        try:
            return resp.status, json.loads(data) if data else None
        except ValueError:
            raise ApiError(f"{method} {path}: {resp.status}, not JSON", resp.status) from None

    async def open(self, path: str, query: Mapping[str, str], lasts: float) -> Any:
        """A streaming GET (the response, status 200) whose headers came within the timeout;
        the whole stream may take ``lasts`` seconds more."""
        try:
            async with asyncio.timeout(self.timeout):
                resp = await self._send("GET", path, query, None, self.timeout + lasts)
                if resp.status != 200:
                    try:
                        text = (await resp.read()).decode("utf-8", "replace")
                    finally:
                        resp.release()
                    raise ApiError(f"watch {path}: {resp.status} {reason_of(text)}", resp.status)
                return resp
        except TimeoutError:
            raise ApiError(f"watch {path}: no answer within {self.timeout:g}s") from None
        except (OSError, aiohttp.ClientError) as exc:
            raise ApiError(f"watch {path}: {exc}") from None

    async def _send(
        self, method: str, path: str, query: Mapping[str, str], body: Any, total: float
    ) -> Any:
        return await self._client.call_api(
            path, method, query_params=list(query.items()),
            header_params={"Accept": "application/json", "Content-Type": "application/json"},
            body=body, auth_settings=["BearerToken"], _preload_content=False,
            _request_timeout=aiohttp.ClientTimeout(total=total),
        )  # fmt: skip


def reason_of(text: str) -> str:
    try:
        status = json.loads(text)
        return f"{status.get('reason', '')}: {status.get('message', '')}"
    except (ValueError, AttributeError):
        return text[:200]


class ObjectWatch:
    def __init__(
        self,
        api_client: Any,
        ref: ObjectRef,
        config: WatchConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ref = ref
        self.config = config or WatchConfig()
        self._http = Transport(api_client, self.config.api_timeout)
        self._clock = clock
        self.latest: Version | None = None
        """The last version yielded."""
        self._rv: str | None = None
        self._contact = clock()
        self._lost = False
        self.relists = 0
        self.rewatches = 0

    def __aiter__(self) -> AsyncIterator[Update]:
        return self.updates()

    async def updates(self) -> AsyncIterator[Update]:
        backoff = self.config.backoff_initial
        while True:
            try:
                async for version in self._round():
                    yield version
                backoff = self.config.backoff_initial
                continue
            except ApiError as exc:
                lost = self._note_failure(exc)
                if lost is not None:
                    yield lost
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, self.config.backoff_max)

    def _note_failure(self, exc: ApiError) -> Lost | None:
        log.warning("watch of %s/%s: %s", self.ref.plural, self.ref.name, exc)
        refused = exc.status in (401, 403)
        if self._lost or not (refused or self._clock() - self._contact >= self.config.lost_after):
            return None
        self._lost = True
        return Lost(str(exc), self._contact)

    def _touch(self) -> None:
        self._contact = self._clock()

    def _changed(self, version: Version) -> bool:
        """Whether ``version`` is news (always, the first time after a `Lost`)."""
        news = (
            self._lost
            or self.latest is None
            or version.resource_version != self.latest.resource_version
        )
        self._lost = False
        if news:
            self.latest = version
        return news

    async def _round(self) -> AsyncIterator[Version]:
        """List if needed, then one watch until it ends; ApiError when something failed."""
        if self._rv is None:
            version = await self._list()
            if self._changed(version):
                yield version
        started = self._clock()
        async for version in self._watch():
            if self._changed(version):
                yield version
        if self._clock() - started < 1.0:  # ended at once: do not spin
            await asyncio.sleep(self.config.backoff_initial)

    async def _list(self) -> Version:
        query = {"fieldSelector": f"metadata.name={self.ref.name}"}
        status, body = await self._http.request("GET", self.ref.path(item=False), query)
        if status != 200:
            raise ApiError(
                f"list {self.ref.plural}: {status} {reason_of(json.dumps(body))}", status
            )
        self._touch()
        self._rv = str(body["metadata"]["resourceVersion"])
        items = body.get("items") or []
        obj = items[0] if items else None
        return Version(obj, str(obj["metadata"]["resourceVersion"]) if obj else self._rv)

    async def _watch(self) -> AsyncIterator[Version]:
        assert self._rv is not None
        timeout = self.config.watch_timeout
        query = {
            "watch": "true",
            "resourceVersion": self._rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout),
            "fieldSelector": f"metadata.name={self.ref.name}",
        }
        resp = await self._http.open(self.ref.path(item=False), query, timeout)
        self._touch()
        self.rewatches += 1
        if self._lost and self.latest is not None:  # contact is back, nothing changed
            yield self.latest
        deadline = self._clock() + timeout + self.config.api_timeout
        try:
            async for event in watch_events(resp, deadline, self._clock):
                self._touch()
                version = self._event(event)
                if version is not None:
                    yield version
                if self._rv is None:  # 410: list again
                    return
        finally:
            resp.release()

    def _event(self, event: Obj) -> Version | None:
        kind, obj = event.get("type"), event.get("object") or {}
        rv = str((obj.get("metadata") or {}).get("resourceVersion", ""))
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            self._rv = rv
            return Version(None if kind == "DELETED" else obj, rv)
        if kind == "BOOKMARK":
            self._rv = rv or self._rv
            return None
        if kind == "ERROR" and obj.get("code") == 410:
            self.relists += 1
            self._rv = None
            return None
        raise ApiError(f"watch {self.ref.plural}: {kind} {obj.get('code')} {obj.get('message')}")


async def watch_events(
    resp: Any, deadline: float, clock: Callable[[], float]
) -> AsyncIterator[Obj]:
    """The JSON events of a watch stream, until it ends; ApiError when it breaks, is cut or
    stays silent past ``deadline``."""
    buffer = b""
    while True:
        while b"\n" not in buffer:
            try:
                async with asyncio.timeout(max(0.0, deadline - clock())):
                    chunk = await resp.content.readany()
            except TimeoutError:
                raise ApiError("watch: silent past its deadline") from None
            except (OSError, aiohttp.ClientError) as exc:
                raise ApiError(f"watch: dropped ({exc.__class__.__name__})") from None
            if not chunk:
                if buffer.strip():
                    raise ApiError("watch: cut in the middle of an event")
                return
            buffer += chunk
            if len(buffer) > MAX_LINE:
                raise ApiError(f"watch: an event over {MAX_LINE} bytes")
        line, buffer = buffer.split(b"\n", 1)
        if line.strip():
            try:
                yield json.loads(line)
            except ValueError:
                raise ApiError("watch: an event that is not JSON") from None


async def follow(watch: ObjectWatch, callback: Callable[[Update], Awaitable[None]]) -> None:
    """Call ``callback`` with each update, forever (cancel the task to stop)."""
    async for update in watch:
        await callback(update)
