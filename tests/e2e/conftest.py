"""Fixtures for end-to-end tests: per-test files and child processes that never outlive it."""

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.e2e.process import WatcherProcess
from tests.e2e.workload import Paths

Spawn = Callable[..., WatcherProcess]


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "train.log"
    log.write_text("", "utf-8")
    return Paths(
        root=tmp_path,
        logs=logs,
        log=log,
        state=tmp_path / "state",
        termination=tmp_path / "termination-log",
    )


@pytest.fixture
def spawn(paths: Paths) -> Iterator[Spawn]:
    """Start a watcher (`spawn(WATCHER_X="1")`); every one is killed at teardown."""
    started: list[WatcherProcess] = []

    def start(command: Sequence[str] | None = None, **env: str) -> WatcherProcess:
        process = WatcherProcess(paths.env(**env), cwd=paths.root, command=command)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.close()
