"""Fixtures for probe tests: a real aiohttp target server and the client session probes use."""

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.probes.server import Target
from watcher.probes.checks import client_session


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
    """The session `watcher.service.serve` gives the checks: a fresh connection per check."""
    async with client_session() as client:
        yield client
