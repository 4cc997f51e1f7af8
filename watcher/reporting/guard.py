"""Keep hostile or broken HTTP clients from taking the server, or the process, down.

Any Pod that can reach the Pod IP can connect. So the server holds at most
`max_connections` connections (a few descriptors, whatever the clients do), and a new
connection always gets in: when the cap is reached, the oldest connection that has not
yet sent whole request headers is dropped for it (the oldest connection of all if every
one has). A connection must send its headers within the header deadline (aiohttp's
keep-alive timer, see `watcher.reporting.server`), so a half-sent request costs a slot
for a few seconds at most. The kubelet's probes send their request at once and are
answered; 1,100 clients trickling headers leave `/healthz` answering and leave the
descriptors to the log files, the ledger and the termination log.
"""

import asyncio
import resource
from collections.abc import Callable

MAX_CONNECTIONS = 64
HEADERS_END = b"\r\n\r\n"


def connection_cap() -> int:
    """`MAX_CONNECTIONS`, less where the descriptor limit is low (a sixteenth of it)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(4, min(MAX_CONNECTIONS, soft // 16))


class ConnectionGuard:
    """Counts the open connections and picks which to drop when a new one comes."""

    def __init__(self, max_connections: int) -> None:
        self.max_connections = max_connections
        self._open: dict[GuardedProtocol, None] = {}
        """Open connections, oldest first."""
        self.dropped = 0
        """Connections dropped to make room for a newer one."""

    def __len__(self) -> int:
        return len(self._open)

    def wrap(self, factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for `loop.create_server` that guards ``factory``'s protocols."""
        return lambda: GuardedProtocol(factory(), self)

    def opened(self, connection: "GuardedProtocol") -> None:
        self._open[connection] = None
        while len(self._open) > self.max_connections:
            older = [c for c in self._open if c is not connection]
            victim = next((c for c in older if c.waiting_for_headers), older[0])
            self._forget(victim)
            victim.abort()
            self.dropped += 1

    def closed(self, connection: "GuardedProtocol") -> None:
        self._forget(connection)

    def abort_all(self) -> None:
        for connection in list(self._open):
            self._forget(connection)
            connection.abort()

    def _forget(self, connection: "GuardedProtocol") -> None:
        self._open.pop(connection, None)


class GuardedProtocol(asyncio.Protocol):
    """Passes everything to aiohttp's protocol; notes when request headers are whole."""

    def __init__(self, inner: asyncio.Protocol, guard: ConnectionGuard) -> None:
        self._inner = inner
        self._guard = guard
        self._transport: asyncio.Transport | None = None
        self.waiting_for_headers = True
        self._seen = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._guard.opened(self)
        if not transport.is_closing():
            self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.waiting_for_headers:
            seen = self._seen + data
            if HEADERS_END in seen:
                self.waiting_for_headers = False
                self._seen = b""
            else:
                self._seen = seen[-(len(HEADERS_END) - 1) :]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard.closed(self)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()
