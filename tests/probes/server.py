"""A real aiohttp server for probe tests: it answers what the test scripts, hangs, or stops.

`Target` runs on the test's event loop (async tests); `ThreadedTarget` runs one on its own
loop in a thread, for end-to-end tests whose watcher is a child process. Every request is
recorded with its time, so tests measure from the first failure the watcher saw.
"""

import asyncio
import ssl
import threading
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

from aiohttp import web

from tests.serving import LoopbackServer

T = TypeVar("T")

HANG = -1
"""Recorded as the status of a request that was left hanging."""
SHUTDOWN = 2.0
"""Seconds the server gives open requests when it stops (hanging ones are released)."""


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: str = "ok"
    hang: bool = False
    """Answer nothing until the server stops."""
    delay: float = 0.0
    """Seconds to take before answering."""


@dataclass(frozen=True)
class Request:
    at: float
    """`time.monotonic()` when the request arrived."""
    status: int
    """What it was answered (`HANG` if it was left hanging)."""


class Target:
    """An HTTP server on 127.0.0.1 and a free port; one request, one scripted `Reply`."""

    def __init__(self) -> None:
        self.default = Reply()
        self.script: deque[Reply] = deque()
        """Replies for the next requests, in order; `default` once they are used up."""
        self.requests: list[Request] = []
        self.port = 0
        self._release: asyncio.Event | None = None
        self._server: LoopbackServer | None = None
        self._scheme = "http"

    @property
    def url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self.port}/healthz"

    def answer(self, status: int = 200, body: str = "ok") -> None:
        self.default = Reply(status, body)

    def hang(self) -> None:
        self.default = Reply(hang=True)

    def then(self, *replies: Reply | int) -> None:
        self.script.extend(r if isinstance(r, Reply) else Reply(r) for r in replies)

    def statuses(self) -> list[int]:
        return [r.status for r in list(self.requests)]

    def first(self, status: int) -> float | None:
        """When the first request answered ``status`` arrived."""
        return next((r.at for r in list(self.requests) if r.status == status), None)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        reply = self.script.popleft() if self.script else self.default
        self.requests.append(Request(time.monotonic(), HANG if reply.hang else reply.status))
        if reply.hang:
            assert self._release is not None
            await self._release.wait()
        await asyncio.sleep(reply.delay)
        return web.Response(status=reply.status, text=reply.body)

    async def start(self, port: int = 0, tls: ssl.SSLContext | None = None) -> int:
        """Listen (HTTPS with ``tls``) and return the port."""
        self._release = asyncio.Event()
        self._scheme = "http" if tls is None else "https"
        app = web.Application()
        app.router.add_get("/healthz", self._handle)
        server = LoopbackServer(app, shutdown_timeout=SHUTDOWN)
        self.port = await server.start(port, tls)
        self._server = server
        return self.port

    async def stop(self) -> None:
        """Close the port (connections are refused from now on) and release hanging requests."""
        if self._release is not None:
            self._release.set()
        if self._server is not None:
            server, self._server = self._server, None
            await server.stop()


class ThreadedTarget:
    """A `Target` on its own event loop in a daemon thread; a context manager."""

    def __init__(self) -> None:
        self.target = Target()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="probe-target", daemon=True
        )

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10.0)

    def stop(self) -> None:
        self._call(self.target.stop())

    def __enter__(self) -> Self:
        self._thread.start()
        self._call(self.target.start())
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.stop()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5.0)
            self._loop.close()
