"""Shared fixtures: a fake clock, the HTTP client session, and a check that no test
leaves asyncio tasks behind."""

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from watcher.probes.checks import client_session

FIXTURES = Path(__file__).resolve().parent / "gpu" / "captures"
"""Real output of GPU tools from public sources, each with its `<name>.source.txt`."""


@dataclass
class FakeClock:
    """A clock the test moves by hand."""

    now: float = 1000.0
    epoch: float = 1_800_000_000.0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.epoch + self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@dataclass
class LoopClock:
    """The running event loop's clock as the watcher's Clock. Under looptime the loop's
    time is fake and every sleep fast-forwards it, so findings, deadlines and sleeps are
    on one time line and a monitor must wake on its own deadlines: nothing pokes it. The
    wall clock is ``epoch`` plus loop time; a test steps it by moving ``epoch``."""

    epoch: float = 1_800_000_000.0

    @property
    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.epoch + self.now


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """The session `watcher.service.serve` gives the probes and the DCGM backend."""
    async with client_session() as client:
        yield client


@pytest.fixture(autouse=True)
async def _no_leftover_tasks() -> AsyncIterator[None]:
    """Every task a test starts must be finished or cancelled by the time it ends."""
    before = asyncio.all_tasks()
    yield
    current = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]
    for task in left:
        task.cancel()
    assert not left, f"tasks left running: {[t.get_name() for t in left]}"


LEAKING_PREFIXES = ("WATCHER_", "POD_WATCHER_")
LEAKING = frozenset(
    (
        "KUBECONFIG",
        "KUBERNETES_SERVICE_HOST",
        "KUBERNETES_SERVICE_PORT",
        "NVIDIA_VISIBLE_DEVICES",
        "JOB_COMPLETION_INDEX",
    )
)
"""What the watcher, the launcher and the Kubernetes client read from the environment: a
shell that sets any of them (an operator's WATCHER_GPU=off) must not change a test.
`.ci/run` runs the suite with a few of them set to prove it."""


HARNESS = frozenset(
    ("POD_WATCHER_REQUIRE_CONTAINER_TESTS", "POD_WATCHER_REQUIRE_PROMTOOL", "POD_WATCHER_IMAGE")
)
"""The test harness's own switches (CI's "must not skip", the image to run): kept."""


def pytest_configure(config: pytest.Config) -> None:
    """Run hermetic: the tests, and every process they start, see none of the settings
    the shell they were started from may hold. A test sets what it needs."""
    for name in list(os.environ):
        if (name.startswith(LEAKING_PREFIXES) or name in LEAKING) and name not in HARNESS:
            del os.environ[name]
