"""What one GPU poll costs, per backend: wall time and CPU, on this machine (no GPU).

    python -m bench.gpu_poll [--polls N] [--gpus N] [--json FILE]

- **nvidia-smi**: the backend runs a fake `nvidia-smi` that prints a realistic 8-GPU
  `--query-gpu` CSV. Two fakes: the test script (a Python start per run, so its own CPU
  is an upper bound) and a `/bin/sh` one that only `cat`s the same CSV (the floor of any
  fork+exec). CPU is split into this process's (spawn, pipes, parse) and the child's.
- **nvml**: the fake `pynvml` module of the tests, 8 GPUs: what the backend itself costs
  (a daemon thread per GPU per poll, the deadline, the bookkeeping); real NVML calls add
  a few ioctls each.
- **dcgm**: a dcgm-exporter stand-in in a process of its own (its CPU is not counted)
  serving 8 GPUs' worth of the real exporter output; the backend GETs and parses it.

CPU is `getrusage` user+system of this process (all threads) and of reaped children,
divided by the number of polls; "at 10 s" is that as a share of one core at the default
`WATCHER_GPU_POLL_INTERVAL`.
"""

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from tests.conftest import FIXTURES
from tests.gpu.fake_pynvml import FakeNvml, h100s
from tests.gpu.fake_smi import SCRIPT
from watcher.gpu.backends.dcgm import DcgmBackend
from watcher.gpu.backends.nvml import NvmlBackend
from watcher.gpu.backends.smi import SmiBackend
from watcher.gpu.formats.smi_csv import QUERY_FIELDS
from watcher.gpu.model import Snapshot

INTERVAL = 10.0
WARMUP = 3
EXPORTER = (FIXTURES / "dcgm-exporter-metrics-k8s-rtx4000ada.prom").read_text("utf-8")
REAL_UUID = "GPU-a8394b51-c086-568a-9f1a-c1e1c934c44c"
_SERVER = """
import sys
from aiohttp import web
body = open(sys.argv[1]).read()
async def metrics(request):
    return web.Response(text=body)
app = web.Application()
app.router.add_get("/metrics", metrics)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), print=None, access_log=None)
"""


@dataclass(frozen=True)
class Cost:
    backend: str
    polls: int
    gpus_read: int
    wall_p50_ms: float
    wall_p95_ms: float
    cpu_self_ms: float
    """Per poll, this process (every thread)."""
    cpu_children_ms: float
    """Per poll, the commands it ran."""

    @property
    def share_at_interval(self) -> float:
        return (self.cpu_self_ms + self.cpu_children_ms) / 1000 / INTERVAL * 100


def _cpu() -> tuple[float, float]:
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


async def measure(name: str, poll: Callable[[], Awaitable[Snapshot]], polls: int) -> Cost:
    for _ in range(WARMUP):
        snapshot = await poll()
    if snapshot.failures:
        raise RuntimeError(f"{name}: the poll fails: {snapshot.failures}")
    walls = []
    self_before, kids_before = _cpu()
    for _ in range(polls):
        started = time.perf_counter()
        snapshot = await poll()
        walls.append(time.perf_counter() - started)
    self_after, kids_after = _cpu()
    return Cost(
        name,
        polls,
        len(snapshot.readings),
        statistics.median(walls) * 1000,
        statistics.quantiles(walls, n=20)[-1] * 1000,
        (self_after - self_before) / polls * 1000,
        (kids_after - kids_before) / polls * 1000,
    )


def cat_fake(root: Path, gpus: int) -> Path:
    """A `/bin/sh` nvidia-smi that prints the python fake's CSV for ``gpus`` GPUs."""
    env = {**os.environ, "FAKE_SMI_GPUS": str(gpus)}
    args = [str(SCRIPT), f"--query-gpu={','.join(QUERY_FIELDS)}", "--format=csv,nounits"]
    csv = subprocess.run(args, env=env, capture_output=True, text=True, check=True).stdout
    (root / "query.csv").write_text(csv, "utf-8")
    cat = root / "nvidia-smi-cat"
    cat.write_text(f"#!/bin/sh\nexec cat {root / 'query.csv'}\n", "utf-8")
    cat.chmod(0o755)
    return cat


async def smi_costs(cat: Path, polls: int) -> list[Cost]:
    costs = []
    for name, command in (("nvidia-smi (python fake)", SCRIPT), ("nvidia-smi (sh cat)", cat)):
        backend = SmiBackend(str(command), 5.0)
        costs.append(await measure(name, backend.poll, polls))
        await backend.close()
    return costs


async def nvml_cost(gpus: int, polls: int) -> Cost:
    backend = NvmlBackend(FakeNvml(h100s(gpus)), None, 5.0)
    cost = await measure("nvml (fake pynvml)", backend.poll, polls)
    await backend.close()
    return cost


def exporter_body(gpus: int) -> str:
    """The real single-GPU output, once per GPU with its own id and UUID."""
    lines = [line for line in EXPORTER.splitlines() if line.startswith(("#", "DCGM"))]
    header = [line for line in lines if line.startswith("#")]
    series = [line for line in lines if line.startswith("DCGM")]
    body = header[:]
    for i in range(gpus):
        uuid = REAL_UUID[:-4] + f"{i:04x}"
        body += [s.replace(REAL_UUID, uuid).replace('gpu="0"', f'gpu="{i}"') for s in series]
    return "\n".join(body) + "\n"


@contextmanager
def exporter(body: Path) -> Iterator[str]:
    """A dcgm-exporter stand-in in its own process: its /metrics URL."""
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-c", _SERVER, str(body), str(port)])
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        server.kill()
        server.wait(5)


async def dcgm_cost(url: str, size: int, polls: int) -> Cost:
    backend = DcgmBackend(url, 5.0, pod=("default", "cuda-75454ffb9f-8ljq7"))
    async with asyncio.timeout(20):  # the server is starting
        while (await backend.poll()).failures:  # noqa: ASYNC110 - nothing to wait on
            await asyncio.sleep(0.05)
    cost = await measure(f"dcgm ({size // 1024} KiB /metrics)", backend.poll, polls)
    await backend.close()
    return cost


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def table(costs: list[Cost]) -> str:
    rows = [
        "| backend | GPUs | wall p50 ms | wall p95 ms | CPU ms/poll (watcher) "
        "| CPU ms/poll (child) | % of a core at 10 s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in costs:
        rows.append(
            f"| {c.backend} | {c.gpus_read} | {c.wall_p50_ms:.2f} | {c.wall_p95_ms:.2f} "
            f"| {c.cpu_self_ms:.2f} | {c.cpu_children_ms:.2f} | {c.share_at_interval:.4f} |"
        )
    return "\n".join(rows)


def run(polls: int, gpus: int) -> list[Cost]:
    with tempfile.TemporaryDirectory(prefix="gpu-poll-") as tmp:
        root = Path(tmp)
        cat = cat_fake(root, gpus)
        os.environ["FAKE_SMI_GPUS"] = str(gpus)
        body = exporter_body(gpus)
        (root / "metrics.prom").write_text(body, "utf-8")
        with exporter(root / "metrics.prom") as url:
            return asyncio.run(_measure_all(cat, url, len(body), polls, gpus))


async def _measure_all(cat: Path, url: str, size: int, polls: int, gpus: int) -> list[Cost]:
    costs = await smi_costs(cat, polls)
    costs.append(await nvml_cost(gpus, polls))
    costs.append(await dcgm_cost(url, size, polls))
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=200)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    costs = run(args.polls, args.gpus)
    print(table(costs))
    if args.json is not None:
        data = [{**asdict(c), "share_at_10s_percent": c.share_at_interval} for c in costs]
        args.json.write_text(json.dumps(data, indent=2) + "\n", "utf-8")


if __name__ == "__main__":
    main()
