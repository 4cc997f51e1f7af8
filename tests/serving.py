"""Serve a real aiohttp application on a loopback port, for the fake servers of the tests
(the Kubernetes API, probe targets, dcgm-exporter, the webhook)."""

import socket
import ssl

from aiohttp import web

HOST = "127.0.0.1"


class LoopbackServer:
    """One application on 127.0.0.1, served once: `start` returns the port, `stop` closes
    it (connections are refused from then on). To serve again, build another."""

    def __init__(self, app: web.Application, *, shutdown_timeout: float = 1.0) -> None:
        self._app = app
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, port: int = 0, tls: ssl.SSLContext | None = None) -> int:
        """Listen on ``port`` (0: any free one), over TLS with ``tls``."""
        assert self._runner is None, "already serving"
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # again on the same port
        sock.bind((HOST, port))
        runner = web.AppRunner(
            self._app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=self._shutdown_timeout,
        )
        await runner.setup()
        try:
            await web.SockSite(runner, sock, ssl_context=tls).start()
        except BaseException:
            await runner.cleanup()
            sock.close()
            raise
        self._runner = runner
        self.port = int(sock.getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
