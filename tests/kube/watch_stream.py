"""A watch, as a real API server streams it: one JSON event per line on a chunked 200.

From the request's ``resourceVersion`` on (the kept changes after it, then live ones); with
no resourceVersion or "0", the current objects first as ADDED events. A resourceVersion
older than what is kept gets one ERROR event with a 410 Expired Status, then the end, as
the watch cache answers. ``allowWatchBookmarks=true`` adds a BOOKMARK (an object with only
``metadata.resourceVersion``) every ``bookmark_interval`` seconds; ``timeoutSeconds`` ends
the stream cleanly. On order the stream is dropped (the connection aborted mid-stream) or
ended, or frozen (nothing more is sent, and the timeout no longer ends it).
"""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from tests.kube import api_answers as k8s
from tests.kube.resources import Resource
from tests.kube.store import Change, Obj, Watcher


@dataclass(frozen=True)
class WatchStart:
    """What the watch request asked for, and what the store had for it at that moment."""

    resource: Resource
    backlog: list[Change] | None
    """Events to send first; None: the resourceVersion is too old (410)."""
    initial: list[Obj]
    """Objects to send as ADDED first (a watch without a resourceVersion)."""
    resource_version: int
    """The store's resourceVersion when the watch opened."""
    bookmarks: bool
    timeout: float | None


def event(kind: str, obj: Obj) -> bytes:
    return json.dumps({"type": kind, "object": obj}).encode() + b"\n"


def expired(asked: str, oldest: int) -> bytes:
    message = f"too old resource version: {asked} ({oldest})"
    return event("ERROR", k8s.status_body(410, "Expired", message))


def bookmark(resource: Resource, resource_version: int) -> bytes:
    meta = {"resourceVersion": str(resource_version), "creationTimestamp": None}
    obj = {"kind": resource.kind, "apiVersion": resource.api_version, "metadata": meta}
    return event("BOOKMARK", obj)


@dataclass(frozen=True)
class Feed:
    """What a stream asks of the fake: bookmark period, its resourceVersion now, a count."""

    bookmark_interval: float
    current: Callable[[], int]
    sent: Callable[[], None]


async def stream(
    request: web.Request, start: WatchStart, watcher: Watcher, feed: Feed
) -> web.StreamResponse:
    """Serve the watch until its timeout, an order or the client going away."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)

    async def send(line: bytes) -> None:
        await response.write(line)
        feed.sent()

    try:
        return await _serve(request, response, start, watcher, feed=feed, send=send)
    except ConnectionResetError:  # the client went away
        return response


async def _serve(
    request: web.Request,
    response: web.StreamResponse,
    start: WatchStart,
    watcher: Watcher,
    *,
    feed: Feed,
    send: Callable[[bytes], Awaitable[None]],
) -> web.StreamResponse:
    if start.backlog is None:
        await send(expired(request.query.get("resourceVersion", ""), start.resource_version))
    else:
        for obj in start.initial:
            await send(event("ADDED", obj))
        for change in start.backlog:
            await send(event(change.type, change.obj))
        if await _follow(start, watcher, feed, send) == "drop":
            assert request.transport is not None
            request.transport.abort()
            return response
    await response.write_eof()
    return response


async def _follow(
    start: WatchStart, watcher: Watcher, feed: Feed, send: Callable[[bytes], Awaitable[None]]
) -> str:
    """Send live changes and bookmarks until the timeout ("end") or an order ("drop")."""
    last = max([start.resource_version, *(c.resource_version for c in start.backlog or ())])
    ends = None if start.timeout is None else time.monotonic() + start.timeout
    period = feed.bookmark_interval
    next_bookmark = time.monotonic() + period if start.bookmarks else None
    while ends is None or time.monotonic() < ends:
        wakes = [t for t in (ends, next_bookmark) if t is not None]
        wait = max(0.0, min(wakes) - time.monotonic()) if wakes else None
        try:
            item = await asyncio.wait_for(watcher.queue.get(), wait)
        except TimeoutError:
            if next_bookmark is not None and time.monotonic() >= next_bookmark:
                await send(bookmark(start.resource, feed.current()))
                next_bookmark = time.monotonic() + period
            continue
        if item == "freeze":  # a hung server: nothing more, not even the timeout's end
            while item not in ("drop", "end"):
                item = await watcher.queue.get()
        if isinstance(item, str):
            return item
        if item.resource_version > last:
            last = item.resource_version
            await send(event(item.type, item.obj))
    return "end"
