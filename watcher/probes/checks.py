"""One HTTP or TCP check. An unhealthy workload is a result, never an exception."""

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from watcher.probes.spec import ProbeSpec
from watcher.rules.regex import compile_pattern

BODY_LIMIT = 64 << 10
"""Bytes of an HTTP body read for ``bodyRegex``."""


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    detail: str
    """What was seen: "200 OK in 3 ms", "connection refused", "timed out after 1s"..."""


def client_session() -> aiohttp.ClientSession:
    """The HTTP client of the probes (and the DCGM exporter reads): a fresh connection per
    request, as the kubelet does, so a server that no longer accepts connections fails."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))


class Checker:
    """Runs one probe's check against its target."""

    def __init__(self, spec: ProbeSpec, session: aiohttp.ClientSession | None) -> None:
        self.spec = spec
        self._session = session
        self._body: Any = None if spec.body_regex is None else compile_pattern(spec.body_regex)

    async def check(self) -> ProbeResult:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.spec.timeout):
                result = await (self._http() if self.spec.type == "http" else self._tcp())
        except TimeoutError:
            return ProbeResult(False, f"timed out after {self.spec.timeout:g}s")
        except (OSError, aiohttp.ClientError) as exc:
            return ProbeResult(False, _describe(exc))
        took = (time.monotonic() - started) * 1000
        return ProbeResult(result.ok, f"{result.detail} in {took:.0f} ms")

    async def _tcp(self) -> ProbeResult:
        _, writer = await asyncio.open_connection(self.spec.host, self.spec.port)
        writer.close()
        await writer.wait_closed()
        return ProbeResult(True, "connected")

    async def _http(self) -> ProbeResult:
        if self._session is None:
            raise RuntimeError("an http probe needs a client session")
        spec = self.spec
        async with self._session.request(
            spec.method,
            spec.url or "",
            headers=spec.headers,
            allow_redirects=True,
            ssl=False,  # as the kubelet: HTTPS without verifying the workload's certificate
        ) as response:
            status = f"{response.status} {response.reason or ''}".strip()
            if not spec.accepts(response.status):
                return ProbeResult(False, f"unexpected status {status}")
            if self._body is None:
                return ProbeResult(True, status)
            body = await response.content.read(BODY_LIMIT)
            if self._body.search(body) is None:
                return ProbeResult(
                    False, f"{status} but the body does not match {spec.body_regex!r}"
                )
            return ProbeResult(True, status)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in text:
        return "connection refused"
    return text
