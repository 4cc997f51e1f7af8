"""The DCGM backend: dcgm-exporter's `/metrics` on this node, plus `dcgmi health -c`.

The exporter sees every GPU of the node, so only this Pod's are kept, here where the
`pod`/`namespace` labels dcgm-exporter adds with its Kubernetes mapping (`-k`) are read:
by UUID or by those labels (`watcher.gpu.ours.Whose`). Knowing neither, nothing is kept:
another Pod's broken GPU must never move this one. Under the device plugin the UUIDs are
known only once the trainer's container runs: `uuid_source` (the launcher's GPU relay,
`backends.relay.RelayUuids`) gives them at each poll; from then on they decide.

`dcgmi health -c` runs too when the command is installed; it numbers GPUs by DCGM id,
which the exporter's `gpu` label gives for each UUID. Its exit status says nothing
about health, so only its text counts; a dcgmi that cannot answer (no host engine, no
health watches set) is noted in the status and never fails the poll.
"""

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp

from watcher.gpu.backends.command import Command
from watcher.gpu.formats.dcgm_exporter import ExporterGpu, read_exporter
from watcher.gpu.formats.dcgmi import parse_dcgmi_health
from watcher.gpu.model import GpuReading, Snapshot, ToolFailure, ToolProblem
from watcher.gpu.ours import NOBODY, Whose

log = logging.getLogger(__name__)

SOURCE = "dcgm"
MAX_BODY = 8 << 20
"""Bytes of /metrics read at most (8 GPUs with every field: a few hundred KiB)."""
CHUNK = 1 << 16


class DcgmBackend:
    """Scrapes dcgm-exporter at ``url``; runs ``dcgmi health -c`` when ``dcgmi`` is set."""

    name = SOURCE

    def __init__(
        self,
        url: str,
        timeout: float,
        *,
        session: aiohttp.ClientSession | None = None,
        uuids: Sequence[str] | None = None,
        pod: tuple[str | None, str] | None = None,
        dcgmi: str | None = None,
        max_body: int = MAX_BODY,
        uuid_source: Callable[[], tuple[str, ...] | None] | None = None,
    ) -> None:
        self.url = url
        self._timeout = timeout
        self._session = session
        self._own_session: aiohttp.ClientSession | None = None
        self.whose = Whose(tuple(uuids) if uuids else None, pod)
        """This Pod's GPUs among the node's: none while nothing tells them apart."""
        self.uuid_source = uuid_source
        """Where the UUIDs come from when not configured: the launcher's GPU relay."""
        self.dcgmi = dcgmi
        self._command = Command(timeout)
        self._max_body = max_body
        self.dcgmi_problem: str | None = None
        """Why the last `dcgmi health -c` said nothing useful, if it did not."""

    async def poll(self) -> Snapshot:
        if self.uuid_source is not None:
            uuids = self.uuid_source()
            if uuids and uuids != self.whose.uuids:
                self.whose = Whose(uuids, self.whose.pod)
                log.info("dcgm: this Pod's GPUs are %s (from the GPU relay)", ", ".join(uuids))
        gpus, failures = await self._scrape()
        ours = self._ours(gpus)
        if gpus and not ours:
            failures += (ToolFailure(ToolProblem.NOT_LISTED, self._nobody()),)
        readings = tuple(gpu.reading for gpu in ours)
        if self.dcgmi is not None and ours:
            readings = _with_health(readings, await self._health())
        return Snapshot(SOURCE, readings, failures)

    def _ours(self, gpus: list[ExporterGpu]) -> list[ExporterGpu]:
        return [gpu for gpu in gpus if self.whose.matches(gpu.reading.gpu, gpu.pods)]

    def _nobody(self) -> str:
        if not self.whose.known():
            return NOBODY
        hint = "" if self.whose.uuids else " (is dcgm-exporter running with --kubernetes?)"
        return f"no GPU series of {self.url} belongs to {self.whose.describe()}{hint}"

    async def _scrape(self) -> tuple[list[ExporterGpu], tuple[ToolFailure, ...]]:
        try:
            async with asyncio.timeout(self._timeout):
                body = await self._get()
        except TimeoutError:
            detail = f"GET {self.url} did not answer within {self._timeout:g}s"
            return [], (ToolFailure(ToolProblem.TIMED_OUT, detail),)
        except (aiohttp.ClientError, ValueError) as exc:
            return [], (ToolFailure(ToolProblem.FAILED, f"GET {self.url}: {exc!r}"),)
        if isinstance(body, ToolFailure):
            return [], (body,)
        return read_exporter(body)

    async def _get(self) -> bytes | ToolFailure:
        async with self._client().get(self.url) as response:
            if response.status != 200:
                text = (await response.content.read(200)).decode("utf-8", "replace")
                detail = f"GET {self.url}: HTTP {response.status} {text.strip()[:120]!r}"
                return ToolFailure(ToolProblem.FAILED, detail)
            body = bytearray()
            while chunk := await response.content.read(CHUNK):
                body += chunk
                if len(body) > self._max_body:
                    detail = f"GET {self.url}: more than {self._max_body} bytes"
                    return ToolFailure(ToolProblem.FAILED, detail)
            return bytes(body)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is not None:
            return self._session
        if self._own_session is None:
            self._own_session = aiohttp.ClientSession()
        return self._own_session

    async def _health(self) -> Snapshot | None:
        """`dcgmi health -c`, or None when it gave nothing to use (noted, logged)."""
        assert self.dcgmi is not None
        problem = None
        snapshot = None
        if self._command.stuck() is not None:
            problem = "an earlier dcgmi is still stuck after being killed"
        else:
            try:
                run = await self._command.run([self.dcgmi, "health", "-c"])
                snapshot = parse_dcgmi_health(run.text)
                if snapshot.failures:
                    problem, snapshot = snapshot.failures[0].detail, None
            except (TimeoutError, OSError) as exc:
                problem = f"dcgmi health -c: {exc!r}"
        if problem != self.dcgmi_problem and problem is not None:
            log.warning("dcgmi health gives nothing to use: %s", problem)
        self.dcgmi_problem = problem
        return snapshot

    def status(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "gpus": self.whose.describe() or None,
            "dcgmi": self.dcgmi,
            "dcgmi_problem": self.dcgmi_problem,
        }

    async def close(self) -> None:
        self._command.close()
        if self._own_session is not None:
            await self._own_session.close()
            self._own_session = None


def _with_health(
    readings: tuple[GpuReading, ...], health: Snapshot | None
) -> tuple[GpuReading, ...]:
    """dcgmi's systems added to the reading with the same DCGM GPU id."""
    if health is None:
        return readings
    by_index = {r.gpu.index: r.health for r in health.readings if r.gpu.index is not None}
    return tuple(
        dataclasses.replace(r, health={**r.health, **by_index[r.gpu.index]})
        if r.gpu.index in by_index
        else r
        for r in readings
    )
