"""One check against a real server: every way a workload can be unhealthy is a result."""

import asyncio
import shutil
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.probes.server import Reply, Target
from watcher.probes.checks import Checker, ProbeResult
from watcher.probes.spec import ProbeSpec

TIMEOUT = 0.3


def http(url: str, **fields: Any) -> ProbeSpec:
    return ProbeSpec.model_validate(
        {"type": "http", "url": url, "timeoutSeconds": TIMEOUT, **fields}
    )


def tcp(port: int, **fields: Any) -> ProbeSpec:
    return ProbeSpec.model_validate(
        {"type": "tcp", "host": "127.0.0.1", "port": port, "timeoutSeconds": TIMEOUT, **fields}
    )


async def timed(checker: Checker) -> tuple[ProbeResult, float]:
    start = time.monotonic()
    result = await checker.check()
    return result, time.monotonic() - start


async def test_ok_then_500_then_hang_then_refused_are_results(
    target: Target, session: aiohttp.ClientSession
) -> None:
    checker = Checker(http(target.url), session)

    result = await checker.check()
    assert result.ok, result
    assert result.detail.startswith("200 OK in "), result

    target.answer(500)
    result = await checker.check()
    assert not result.ok
    assert result.detail.startswith("unexpected status 500 Internal Server Error"), result

    target.hang()
    result, took = await timed(checker)
    assert not result.ok
    assert result.detail == f"timed out after {TIMEOUT:g}s"
    assert TIMEOUT - 0.01 <= took < TIMEOUT + 0.5, took

    await target.stop()
    result, took = await timed(checker)
    assert not result.ok
    assert result.detail == "connection refused"
    assert took < TIMEOUT
    assert target.statuses() == [200, 500, -1]


@pytest.mark.parametrize(
    ("status", "ok"),
    [(200, True), (204, True), (302, True), (399, True), (400, False), (404, False), (503, False)],
)
async def test_default_accepts_200_to_399_like_kubernetes(
    target: Target, session: aiohttp.ClientSession, status: int, ok: bool
) -> None:
    target.answer(status, "" if status in (204, 302) else "body")
    result = await Checker(http(target.url), session).check()
    assert result.ok is ok, result


async def test_expected_status_list(target: Target, session: aiohttp.ClientSession) -> None:
    checker = Checker(http(target.url, expectedStatus=[204, 503]), session)
    target.then(503, 204, 200, 500)
    results = [await checker.check() for _ in range(4)]
    assert [r.ok for r in results] == [True, True, False, False]
    assert results[2].detail.startswith("unexpected status 200 OK")


async def test_body_regex(target: Target, session: aiohttp.ClientSession) -> None:
    checker = Checker(http(target.url, bodyRegex=r'"status":\s*"ok"'), session)
    target.then(Reply(200, '{"status": "ok", "step": 10}'), Reply(200, '{"status": "degraded"}'))
    good, bad = await checker.check(), await checker.check()
    assert good.ok, good
    assert not bad.ok
    assert bad.detail.startswith('200 OK but the body does not match \'"status":\\\\s*"ok"\'')


async def test_body_regex_is_not_checked_on_a_refused_status(
    target: Target, session: aiohttp.ClientSession
) -> None:
    target.answer(500, '{"status": "ok"}')
    result = await Checker(http(target.url, bodyRegex='"ok"'), session).check()
    assert not result.ok
    assert result.detail.startswith("unexpected status 500")


async def test_tcp_open_then_closed_port(target: Target) -> None:
    checker = Checker(tcp(target.port), None)
    result = await checker.check()
    assert result.ok, result
    assert result.detail.startswith("connected in ")
    await target.stop()
    result = await checker.check()
    assert not result.ok
    assert result.detail == "connection refused"


async def test_http_to_a_closed_port_is_refused_not_raised(
    target: Target, session: aiohttp.ClientSession
) -> None:
    url = target.url
    await target.stop()
    result = await Checker(http(url), session).check()
    assert result == ProbeResult(False, "connection refused")


async def test_a_server_that_is_not_http_is_a_failed_check(session: aiohttp.ClientSession) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        result = await Checker(http(f"http://127.0.0.1:{port}/healthz"), session).check()
    finally:
        server.close()
        await server.wait_closed()
    assert not result.ok
    assert "Bad status line" in result.detail, result


@pytest.fixture
def self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a certificate nobody vouches for, as trainers often have."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl to make a self-signed certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    command = [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-subj", "/CN=trainer", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_https_is_checked_without_verifying_the_certificate_like_the_kubelet(
    self_signed: ssl.SSLContext, session: aiohttp.ClientSession
) -> None:
    target = Target()
    await target.start(tls=self_signed)
    try:
        assert target.url.startswith("https://")
        result = await Checker(http(target.url), session).check()
        assert result.ok, result.detail
        assert target.statuses() == [200]
    finally:
        await target.stop()
