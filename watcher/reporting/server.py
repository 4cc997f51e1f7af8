"""The HTTP server: /healthz, /readyz, /status and /metrics on aiohttp."""

import json
import logging
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

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


class HttpServer:
    """Runs the app on host:port without touching signal handlers (the CLI owns those)."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=0.5
        )
        self._host = host
        self._port = port
        self.port: int | None = None

    async def start(self) -> int:
        """Bind and serve; returns the bound port (useful when 0 was asked for)."""
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        await self._runner.cleanup()


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str, indent=1)
