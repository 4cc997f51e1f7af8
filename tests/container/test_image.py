"""The image as Kubernetes runs it: exit codes and signals pass through, non-root on a
read-only root, bytecode compiled, small and quick to be ready."""

import time

import pytest

from tests.container.conftest import RunContainer
from tests.container.podman import IMAGE, UID, Volumes, image_size, podman
from tests.e2e.workload import BENIGN, NCCL_TIMEOUT, append

pytestmark = [pytest.mark.container, pytest.mark.slow]

PUBLISH = ("-p", "127.0.0.1::9188")
MB = 1_000_000


def test_size_and_start_to_ready(
    containers: RunContainer, volumes: Volumes, request: pytest.FixtureRequest
) -> None:
    size = image_size()
    start = time.time()
    watcher = containers("watcher", *PUBLISH, *volumes.watcher_mounts())
    ready = watcher.wait_ready()
    total, inside = ready - start, ready - watcher.started_at()
    assert watcher.get("/healthz")[0] == 200
    request.node.user_properties += [
        ("image size", f"{size / MB:.0f} MB"),
        ("podman run to /readyz 200", f"{total:.2f} s"),
        ("container start to /readyz 200", f"{inside:.2f} s"),
    ]
    assert size < 300 * MB, f"{IMAGE} is {size / MB:.0f} MB"
    assert inside < 5.0, f"{inside:.2f}s from the container's start to ready\n{watcher.logs()}"


def test_fatal_line_exits_88_with_the_termination_message(
    containers: RunContainer, volumes: Volumes
) -> None:
    log = volumes.logs / "rank0.log"
    append(log, BENIGN)
    watcher = containers("watcher", *PUBLISH, *volumes.watcher_mounts())
    watcher.wait_ready()
    written = time.time()
    offset = append(log, NCCL_TIMEOUT + "\n")
    assert watcher.wait_exit(10.0) == 88, watcher.logs()
    assert watcher.finished_at() - written < 2.0
    message = volumes.termination.read_text("utf-8")
    assert "NcclWatchdogTimeout" in message
    assert NCCL_TIMEOUT in message
    [entry] = volumes.ledger("restart")
    assert (entry["file"], entry["offset"], entry["exit_code"]) == ("/logs/rank0.log", offset, 88)


def test_sigterm_exits_0_within_a_second(containers: RunContainer, volumes: Volumes) -> None:
    watcher = containers("watcher", *PUBLISH, *volumes.watcher_mounts())
    watcher.wait_ready()
    sent = time.time()
    watcher.signal("TERM")
    assert watcher.wait_exit(10.0) == 0, watcher.logs()
    assert watcher.finished_at() - sent < 1.0
    assert any(r.get("msg") == "received SIGTERM" for r in watcher.records()), watcher.logs()


def test_bad_variable_exits_2(containers: RunContainer, volumes: Volumes) -> None:
    options = (*volumes.watcher_mounts(), "-e", "WATCHER_HTTP_PORT=ninety")
    watcher = containers("watcher", *options, detach=False)
    assert watcher.run.returncode == 2, watcher.logs()
    assert "WATCHER_HTTP_PORT" in watcher.run.stderr
    assert "configuration error" in volumes.termination.read_text("utf-8")


def test_runs_unprivileged_on_a_read_only_root(containers: RunContainer, volumes: Volumes) -> None:
    config = podman("image", "inspect", "--format", "{{.Config.User}}", IMAGE).stdout.strip()
    assert config == f"{UID}:{UID}"
    watcher = containers("watcher", *PUBLISH, *volumes.watcher_mounts())
    watcher.wait_ready()

    # The watcher itself is PID 1: SIGTERM reaches it and its exit code is the container's.
    cmdline = watcher.exec("cat", "/proc/1/cmdline").stdout.split("\0")
    assert cmdline[1:3] == ["/opt/pod-watcher/bin/pod-watcher", "run"], cmdline
    status = dict(
        line.split(":\t", 1) for line in watcher.exec("cat", "/proc/1/status").stdout.splitlines()
    )
    assert status["Uid"].split() == [str(UID)] * 4
    assert status["Gid"].split() == [str(UID)] * 4
    assert int(status["CapEff"], 16) == int(status["CapBnd"], 16) == 0
    assert status["NoNewPrivs"] == "1"

    for path in ("/opt/pod-watcher/x", "/tmp/x", "/logs/x"):
        denied = watcher.exec("touch", path)
        assert denied.returncode != 0 and "Read-only file system" in denied.stderr, path
    assert watcher.exec("touch", "/state/x").returncode == 0
    assert watcher.get("/healthz")[0] == 200


BYTECODE_CHECK = """
import importlib.util, os, pathlib, sys
import watcher.cli, watcher.service
loaded = [m.__cached__ for m in list(sys.modules.values()) if getattr(m, "__cached__", None)]
venv = pathlib.Path("/opt/pod-watcher/lib").rglob("*.py")
cached = [importlib.util.cache_from_source(str(p)) for p in venv]
missing = [c for c in loaded + cached if not os.path.exists(c)]
print(len(loaded), len(cached), *missing[:20])
sys.exit(1 if missing or len(loaded) < 100 else 0)
"""


def test_every_module_has_compiled_bytecode(containers: RunContainer) -> None:
    """A read-only root cannot cache bytecode: without .pyc files every start compiles."""
    options = ("--entrypoint", "/opt/pod-watcher/bin/python3")
    check = containers("python", *options, command=["-c", BYTECODE_CHECK], detach=False)
    assert check.run.returncode == 0, check.run.stdout + check.run.stderr
