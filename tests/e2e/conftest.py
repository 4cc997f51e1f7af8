"""Fixtures for end-to-end tests: per-test files, child processes that never outlive it, and
the fake Kubernetes API with the environment that points a watcher at it."""

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.process import WatcherProcess
from tests.e2e.workload import Paths
from tests.kube.fake_api import ThreadedFakeApi, write_kubeconfig
from tests.kube.manifests import TRAINER, WATCHER, running_pod

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
def started() -> Iterator[list[WatcherProcess]]:
    """The watchers a test started; every one is killed at teardown, and before the fake
    API stops (a watcher still connecting to a closing server leaves it a socket that
    the garbage collector finds unclosed later, in another test)."""
    processes: list[WatcherProcess] = []
    yield processes
    for process in processes:
        process.close()


@pytest.fixture
def spawn(paths: Paths, started: list[WatcherProcess]) -> Spawn:
    """Start a watcher (`spawn(WATCHER_X="1")`); every one is killed at teardown."""

    def start(command: Sequence[str] | None = None, **env: str) -> WatcherProcess:
        process = WatcherProcess(paths.env(**env), cwd=paths.root, command=command)
        started.append(process)
        return process.start()

    return start


@pytest.fixture
def api(started: list[WatcherProcess]) -> Iterator[ThreadedFakeApi]:
    with ThreadedFakeApi() as fake:
        yield fake
        for process in started:  # they stop talking to the fake before it stops
            process.close()
        assert fake.api.errors == [], "the watcher sent something the API schemas reject"


@pytest.fixture
def kube_env(api: ThreadedFakeApi, tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "kubeconfig"
    write_kubeconfig(config, api.url, "fake-token")
    launcher = tmp_path / "pw"
    env = {"WATCHER_LAUNCHER_DIR": str(launcher)}
    api.api.set_pod(launched_from(running_pod(TRAINER, "default"), env))
    return {
        "KUBECONFIG": str(config),
        "WATCHER_POD_NAME": TRAINER,
        "WATCHER_POD_NAMESPACE": "default",
        "WATCHER_CONTAINER_NAME": WATCHER,
        "WATCHER_API_TIMEOUT": "1",
        # the served Pod (manifests/pod.yaml) runs its trainer through the launcher
        "WATCHER_LAUNCHER_DIR": str(launcher),
    }


def launched_from(pod: dict[str, Any], kube_env: dict[str, str]) -> dict[str, Any]:
    """The Pod with the manifests' /pod-watcher moved to where this test's watcher
    installs its launcher (in a cluster both containers mount it at one path)."""
    directory = kube_env["WATCHER_LAUNCHER_DIR"]
    value: dict[str, Any] = json.loads(json.dumps(pod).replace('"/pod-watcher', f'"{directory}'))
    return value
