"""The webhook's real aiohttp application on a loopback socket, over real TLS."""

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from tests.serving import LoopbackServer
from tests.webhook.certs import HOST
from watcher.inject.pieces import Options
from watcher.webhook.server import application
from watcher.webhook.tls import ReloadingContext


@asynccontextmanager
async def running(tls: ReloadingContext, options: Options | None = None) -> AsyncIterator[int]:
    """The server's port while it serves."""
    server = LoopbackServer(application(options or Options()))
    port = await server.start(tls=tls.context)
    try:
        yield port
    finally:
        await server.stop()


async def post(port: int, client: ssl.SSLContext, body: Any, path: str = "/mutate") -> Any:
    """POST as the API server does: to the Service's name, trusting the caBundle alone."""
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(
            f"https://127.0.0.1:{port}{path}", json=body, ssl=client, server_hostname=HOST
        ) as response,  # fmt: skip
    ):
        return response.status, await response.json()


async def peer_certificate(port: int, client: ssl.SSLContext) -> bytes:
    """The certificate the server presents in a new handshake (DER)."""
    _, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=client, server_hostname=HOST), 10
    )
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        assert isinstance(der, bytes)
        return der
    finally:
        writer.close()
        await writer.wait_closed()
