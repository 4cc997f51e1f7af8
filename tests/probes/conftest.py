"""Fixtures for probe tests: a real aiohttp target server and the client session probes use."""

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.probes.server import Target


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    server = Target()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """Built as `watcher.service.serve` builds it: a fresh connection per check."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as client:
        yield client
