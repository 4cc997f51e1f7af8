"""Nothing blocks the loop: a stdout nobody reads, and 1,100 clients that never finish
their request, against the real `pod-watcher` process."""

import asyncio
import contextlib
import fcntl
import logging
import os
import resource
import selectors
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.e2e.conftest import Spawn
from tests.e2e.process import child_env, http_get, module_command
from tests.e2e.workload import NCCL_TIMEOUT, Paths, append
from tests.logs.helpers import record
from tests.waiting import wait_until
from watcher.reporting.logs import NonBlockingHandler, TextFormatter
from watcher.reporting.server import HttpServer

LAST_WORDS = 1.0
SLOW_CLIENTS = 1100
CHILD_DESCRIPTORS = 1024
"""The child's descriptor limit: a common container default, below the slow clients."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def full_pipe() -> tuple[int, int]:
    """A pipe whose buffer is already full: the next write to it blocks."""
    read_end, write_end = os.pipe()
    flags = fcntl.fcntl(write_end, fcntl.F_GETFL)
    fcntl.fcntl(write_end, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(write_end, b"x" * 4096)
    fcntl.fcntl(write_end, fcntl.F_SETFL, flags)
    return read_end, write_end


@pytest.mark.slow
def test_a_stdout_nobody_reads_blocks_neither_the_loop_nor_the_exit(
    paths: Paths, request: pytest.FixtureRequest
) -> None:
    port = free_port()
    read_end, write_end = full_pipe()
    env = paths.env(
        WATCHER_HTTP_PORT=str(port), WATCHER_LAST_WORDS_TIMEOUT=str(LAST_WORDS),
        WATCHER_LOG_LEVEL="debug",
    )  # fmt: skip
    child = subprocess.Popen(
        [*module_command(), "run"], env=child_env(env), cwd=paths.root,
        stdin=subprocess.DEVNULL, stdout=write_end, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(write_end)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(f"{url}/readyz"), 15.0, "/readyz with stdout stalled")
        assert http_get(f"{url}/healthz", 1.0)[0] == 200
        written = time.monotonic()
        append(paths.log, NCCL_TIMEOUT + "\n")
        code = child.wait(LAST_WORDS + 5.0)
        took = time.monotonic() - written
        record(request, took, "fatal_line_to_exit_s")
        assert code == 88
        assert took < LAST_WORDS + 0.5, f"{took:.3f}s from the fatal line to the exit"
        assert "reason: NcclWatchdogTimeout" in paths.termination.read_text("utf-8")
        assert [e["reason"] for e in paths.ledger_entries("restart")] == ["NcclWatchdogTimeout"]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)
        os.close(read_end)


def _answers(url: str) -> bool:
    try:
        return http_get(url, 0.5)[0] == 200
    except OSError:
        return False


def test_lines_that_stdout_cannot_take_are_dropped_and_counted() -> None:
    read_end, write_end = full_pipe()
    stream = os.fdopen(write_end, "w")
    handler = NonBlockingHandler(stream, lines=10)
    handler.setFormatter(TextFormatter())
    logger = logging.Logger("stalled")
    logger.addHandler(handler)
    started = time.monotonic()
    for number in range(1000):
        logger.warning("line %d", number)
    handler.flush()
    assert time.monotonic() - started < 0.5  # never waited for the pipe
    assert handler.dropped >= 1000 - 10 - 1
    os.set_blocking(read_end, False)  # stdout moves again: the loss is told
    deadline = time.monotonic() + 5.0
    text = b""
    while b"dropped" not in text and time.monotonic() < deadline:
        with contextlib.suppress(BlockingIOError):
            text += os.read(read_end, 1 << 16)
        time.sleep(0.01)
    assert b"dropped " in text and b"log lines: stdout was not read fast enough" in text
    handler.close()
    stream.close()
    os.close(read_end)


@contextlib.contextmanager
def descriptors(count: int) -> Iterator[None]:
    """Let this test process hold ``count`` more descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = len(os.listdir("/proc/self/fd")) + count + 64
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"needs {wanted} descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def half_sent_requests(port: int, count: int) -> list[socket.socket]:
    """``count`` connections that send the start of a request and never finish it."""
    clients = []
    for _ in range(count):
        client = socket.socket()
        client.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            client.connect(("127.0.0.1", port))
        clients.append(client)
    pending = set(clients)
    deadline = time.monotonic() + 10.0
    with selectors.DefaultSelector() as selector:
        for client in clients:
            selector.register(client, selectors.EVENT_WRITE)
        while pending and time.monotonic() < deadline:  # connected (or refused)
            for key, _ in selector.select(timeout=0.1):
                selector.unregister(key.fileobj)
                pending.discard(key.fileobj)
    for client in clients:
        with contextlib.suppress(OSError):
            client.send(b"GET /healthz HTTP/1.1\r\nHost: watcher\r\nX-Slow: ")
    return clients


def settled(pid: int) -> None:
    """Wait until the watcher has taken every connection it is going to take: its
    number of descriptors stays the same for 0.5 s (at most 10 s)."""
    last, since = -1, time.monotonic()
    deadline = since + 10.0
    while time.monotonic() < deadline:
        now = len(os.listdir(f"/proc/{pid}/fd"))
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= 0.5:
            return
        time.sleep(0.05)


def limited_descriptors() -> list[str]:
    """`python -m watcher` with its descriptor limit at `CHILD_DESCRIPTORS`."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return ["prlimit", f"--nofile={CHILD_DESCRIPTORS}:{hard}", *module_command()]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs prlimit (util-linux)")
def test_slow_clients_leave_healthz_answering_and_a_rotated_in_file_followed(
    paths: Paths, spawn: Spawn, request: pytest.FixtureRequest
) -> None:
    watcher = spawn(limited_descriptors())
    port = watcher.wait_ready()
    with descriptors(SLOW_CLIENTS):
        clients = half_sent_requests(port, SLOW_CLIENTS)
        try:
            settled(watcher.proc.pid)
            asked = time.monotonic()
            code, _ = watcher.get("/healthz", timeout=2.0)
            record(request, time.monotonic() - asked, "healthz_s")
            assert code == 200
            paths.log.rename(paths.logs / "train.log.1")  # rotated: a new file is opened
            append(paths.log, "step 1 | loss 2.0\n")
            written = time.monotonic()
            append(paths.log, NCCL_TIMEOUT + "\n")
            assert watcher.wait_exit(5.0) == 88, watcher.describe()
            took = time.monotonic() - written
            record(request, took, "fatal_line_to_exit_s")
            assert took < 1.0, f"{took:.3f}s from the fatal line to the exit"
            message = paths.termination.read_text("utf-8")
            assert f"file: {paths.log}" in message or str(paths.log) in message, message
        finally:
            for client in clients:
                client.close()


def test_the_child_limit_is_below_the_slow_clients() -> None:
    assert CHILD_DESCRIPTORS < SLOW_CLIENTS
    assert sys.platform.startswith("linux")


async def hello(_: web.Request) -> web.Response:
    return web.Response(text="ok")


@contextlib.asynccontextmanager
async def serving(**options: Any) -> AsyncIterator[HttpServer]:
    app = web.Application()
    app.router.add_get("/healthz", hello)
    server = HttpServer(app, "127.0.0.1", 0, **options)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def half_sent(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    return reader, writer


async def test_over_the_cap_the_oldest_half_sent_request_makes_room(
    session: aiohttp.ClientSession,
) -> None:
    async with serving(max_connections=4) as server:
        assert server.port is not None
        slow = [await half_sent(server.port) for _ in range(4)]
        async with session.get(f"http://127.0.0.1:{server.port}/healthz") as response:
            assert response.status == 200
        assert await slow[0][0].read() == b""  # dropped for the newcomer
        assert len(server.guard) <= 4
        assert server.guard.dropped >= 1
        for _, writer in slow:
            writer.close()


async def test_headers_must_arrive_within_the_deadline() -> None:
    async with serving(header_timeout=0.3) as server:
        assert server.port is not None
        reader, writer = await half_sent(server.port)
        started = asyncio.get_running_loop().time()
        async with asyncio.timeout(3.0):
            assert await reader.read() == b""
        assert asyncio.get_running_loop().time() - started < 1.5
        writer.close()
