"""Fixtures for the container tests: the image, a Pod's volumes, containers that never
outlive their test. Without podman or the image the tests skip, unless
POD_WATCHER_REQUIRE_CONTAINER_TESTS=1 (set by .ci/run) makes that a failure."""

import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.container.podman import (
    HARDENED,
    IMAGE,
    RUNTIME,
    Container,
    Volumes,
    available,
    image_exists,
    podman,
)

RunContainer = Callable[..., Container]


def _missing(reason: str) -> None:
    if os.environ.get("POD_WATCHER_REQUIRE_CONTAINER_TESTS") == "1":
        pytest.fail(f"{reason} (POD_WATCHER_REQUIRE_CONTAINER_TESTS=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def image() -> str:
    if not available():
        _missing("podman is not installed")
    if not image_exists():
        _missing(f"image {IMAGE} is absent: build it with scripts/build-image")
    return IMAGE


@pytest.fixture
def volumes(tmp_path: Path, image: str) -> Volumes:
    return Volumes.create(tmp_path)


@pytest.fixture
def containers(image: str) -> Iterator[RunContainer]:
    """`containers("watcher", *options, command=[...], detach=True)`: `podman run` the image,
    hardened; detached it returns at once, else when the container exits (under a
    deadline). Names are unique; every container is removed at teardown."""
    prefix = f"pw-test-{uuid.uuid4().hex[:10]}"
    names: list[str] = []

    def run(
        role: str, *options: str, command: Sequence[str] = (), detach: bool = True
    ) -> Container:
        name = f"{prefix}-{role}"
        names.append(name)
        args = ["run", *(["--detach"] if detach else []), "--name", name, *RUNTIME, *HARDENED]
        result = podman(*args, *options, image, *command, timeout=60.0, check=detach)
        return Container(name, result)

    yield run
    if names:
        podman("rm", "--force", "--ignore", "--time", "0", *names, check=False)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Show what the container tests measured (image size, start to ready)."""
    lines = [
        f"{report.nodeid.split('::')[-1]}: {name} = {value}"
        for report in terminalreporter.stats.get("passed", [])
        if "tests/container/" in report.nodeid
        for name, value in report.user_properties
    ]
    if lines:
        terminalreporter.write_sep("-", "container measurements")
        for line in lines:
            terminalreporter.write_line(line)
