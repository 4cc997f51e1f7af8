"""In-place restarts with the real image, two containers of one Pod, the way the kubelet
runs them: the watcher first (its /readyz is the startupProbe), then the trainer, run
through the launcher the watcher installed into their shared volume. The trainer prints
an NCCL timeout to stdout and dies at every start. When the watcher exits 88 the test does
what RestartAllContainers does: SIGTERM to the trainer, SIGKILL 2 s later, then both start
again. Once the budget is spent the launcher lets the trainer exit with its own code and
the reason: the Pod fails."""

import os
from pathlib import Path

import pytest

from tests.container.conftest import RunContainer
from tests.container.podman import UID, Container, Volumes
from tests.e2e.workload import NCCL_TIMEOUT

pytestmark = [pytest.mark.container, pytest.mark.slow]

TRAINER = """
echo "trainer start $POD_WATCHER_START: resuming from the last checkpoint"
for step in 1 2 3; do echo "step $step | loss 2.3417 | lr 3.0e-04"; done
printf '%s\\n' "$FATAL"
exit 1
"""
"""A job whose collective times out at every start: the watchdog prints, the process dies."""
MAX_RESTARTS = 2


def shared(volumes: Volumes) -> Path:
    """The pod-watcher emptyDir of manifests/pod.yaml, and the trainer's termination log."""
    directory = volumes.root / "pod-watcher"
    if not directory.exists():
        directory.mkdir()
        os.chown(directory, UID, UID)
        message = volumes.root / "trainer-termination-log"
        message.touch()
        os.chown(message, UID, UID)
    return directory


def watcher_container(containers: RunContainer, volumes: Volumes) -> Container:
    return containers(
        "watcher",
        "-p", "127.0.0.1::9188",
        "-v", f"{volumes.state}:/state",
        "-v", f"{volumes.termination}:/dev/termination-log",
        "-v", f"{shared(volumes)}:/pod-watcher",
        "-e", "WATCHER_STATE_DIR=/state",
        "-e", "WATCHER_LAUNCHER_DIR=/pod-watcher",
        "-e", f"WATCHER_MAX_RESTARTS={MAX_RESTARTS}",
        "-e", "WATCHER_RESTART_BACKOFF=1",
    )  # fmt: skip


def trainer_container(containers: RunContainer, volumes: Volumes) -> Container:
    return containers(
        "trainer",
        "--entrypoint", "python3",
        "-v", f"{shared(volumes)}:/pod-watcher",
        "-v", f"{volumes.root / 'trainer-termination-log'}:/dev/termination-log",
        "-e", f"FATAL={NCCL_TIMEOUT}",
        command=["/pod-watcher/launch", "--", "sh", "-c", TRAINER],
    )  # fmt: skip


def restart_all(watcher: Container, trainer: Container) -> None:
    """RestartAllContainers: every container stops (2 s after SIGTERM at most), then the
    watcher starts and, once ready, the trainer."""
    if trainer.running():
        trainer.signal("TERM")
        trainer.wait_exit(3.0)
    watcher.start()
    watcher.wait_ready()
    trainer.start()


def test_in_place_restarts_through_the_launcher_then_the_pod_fails(
    containers: RunContainer, volumes: Volumes
) -> None:
    watcher = watcher_container(containers, volumes)
    watcher.wait_ready()
    assert (shared(volumes) / "launch").is_file()  # installed before it reported ready
    trainer = trainer_container(containers, volumes)
    for restart in range(1, MAX_RESTARTS + 1):
        assert watcher.wait_exit(20.0) == 88, watcher.logs() + trainer.logs()
        restarts = volumes.ledger("restart")
        assert len(restarts) == restart
        assert restarts[-1]["reason"] == "NcclWatchdogTimeout"
        assert restarts[-1]["evidence"] == [NCCL_TIMEOUT]
        assert restarts[-1]["details"]["launcher_start"] == restart
        assert f"restart {restart} of at most {MAX_RESTARTS}" in volumes.termination.read_text()
        assert trainer.running()  # the launcher held the dead trainer's container for us
        restart_all(watcher, trainer)
        status = watcher.status()
        assert status["start"]["mode"] == "after_restart"
        assert status["budget"]["restarts_in_window"] == restart

    # The third fault: the budget is spent; the launcher lets the trainer fail.
    assert trainer.wait_exit(20.0) == 1, trainer.logs() + watcher.logs()
    [failed] = volumes.ledger("fail")
    assert "restart budget exhausted (2 restarts" in failed["explanation"]
    message = (volumes.root / "trainer-termination-log").read_text()
    assert "restart budget exhausted" in message and "exit code 1" in message
    assert "trainer start 3: resuming" in trainer.logs()  # kubectl logs shows stdout as is
    assert watcher.status()["state"] == "failing"
    watcher.signal("TERM")  # the kubelet stops the sidecar of a Pod whose trainer ended
    assert watcher.wait_exit(10.0) == 0
