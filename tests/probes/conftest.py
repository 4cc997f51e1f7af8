"""Fixtures for probe tests: a real aiohttp target server (the client session is the
shared `session` fixture)."""

from collections.abc import AsyncIterator

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
