"""The HTTP server: /healthz, /readyz, /status and /metrics on aiohttp.

It listens on every address of the Pod (`WATCHER_HTTP_HOST=0.0.0.0`): the kubelet's
probes and Prometheus come to the Pod IP, and binding to the Pod IP alone would keep no
other Pod out (they reach the Pod IP too). It is hardened instead: a connection cap with
the oldest half-sent request dropped first (`watcher.reporting.guard`), a header deadline,
and descriptors left to the rest of the watcher. README says what it reveals and how a
NetworkPolicy closes it.
"""

import asyncio
import json
import logging
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from watcher.reporting.guard import ConnectionGuard, connection_cap

log = logging.getLogger(__name__)


class Observable(Protocol):
    """What the server asks the watcher."""

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Loop alive and every monitor still seeing its source."""

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Every monitor started."""

    def status(self) -> dict[str, Any]:
        """Everything worth showing, JSON-able."""


def build_app(watcher: Observable, registry: CollectorRegistry) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        ok, body = watcher.health()
        return web.json_response(body, status=200 if ok else 503)

    async def readyz(_: web.Request) -> web.Response:
        ok, body = watcher.readiness()
        return web.json_response(body, status=200 if ok else 503)

    async def status(_: web.Request) -> web.Response:
        return web.json_response(watcher.status(), dumps=_dumps)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/status", status)
    # prometheus-client's own handler: text or OpenMetrics as the scraper asks, gzip
    app.router.add_get("/metrics", make_aiohttp_handler(registry))
    return app


HEADER_TIMEOUT = 5.0
"""Seconds a connection has to send whole request headers (and an idle keep-alive
connection is kept): aiohttp's keep-alive timer runs from the connection's start."""
BACKLOG = 128


class HttpServer:
    """Runs the app on host:port without touching signal handlers (the CLI owns those)."""

    def __init__(
        self,
        app: web.Application,
        host: str,
        port: int,
        *,
        max_connections: int | None = None,
        header_timeout: float = HEADER_TIMEOUT,
    ) -> None:
        self._runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=0.5,
            keepalive_timeout=header_timeout,
        )
        self._host = host
        self._port = port
        self.guard = ConnectionGuard(max_connections or connection_cap())
        self._server: asyncio.Server | None = None
        self.port: int | None = None

    @property
    def requested_port(self) -> int:
        return self._port

    async def start(self) -> int:
        """Bind and serve; returns the bound port (useful when 0 was asked for)."""
        await self._runner.setup()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(
                self.guard.wrap(server), self._host, self._port, backlog=BACKLOG, reuse_address=True
            )
        except (OSError, UnicodeError) as exc:  # the message names the host as well
            await self._runner.cleanup()
            errno = getattr(exc, "errno", None) or 0
            why = getattr(exc, "strerror", None) or str(exc)
            raise OSError(errno, f"WATCHER_HTTP_HOST={self._host!r}: {why}") from None
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        """Stop listening, drop every connection, and let aiohttp clean up (its
        handlers have nothing left to wait for). A second call does nothing."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        self.guard.abort_all()
        await self._runner.cleanup()


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str, indent=1)
