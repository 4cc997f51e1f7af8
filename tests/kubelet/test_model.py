"""The kubelet model against each point of docs/kubelet.md, with real processes."""

import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests import waiting
from tests.kubelet.model import KILL_GRACE, KubeletModel
from tests.kubelet.pod import pod_spec
from tests.kubelet.status import REMOVED, RESTARTING

pytestmark = pytest.mark.slow
FAKE = [sys.executable, str(Path(__file__).with_name("fake_container.py"))]
RESTART_ALL_ON_88 = [
    {"action": "RestartAllContainers", "exitCodes": {"operator": "In", "values": [88]}}
]
NOT_ZERO = [{"action": "RestartAllContainers", "exitCodes": {"operator": "NotIn", "values": [0]}}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sidecar(tmp: Path, port: int, *extra: str, rules: Any = RESTART_ALL_ON_88) -> dict[str, Any]:
    return {
        "name": "watcher",
        "restartPolicy": "Always",
        "restartPolicyRules": rules,
        "command": [*FAKE, "--serve", str(port), *extra],
        "startupProbe": {"httpGet": {"path": "/", "port": port}, "periodSeconds": 0.05,
                         "failureThreshold": 100},
    }  # fmt: skip


def main(*args: str, rules: Any = ()) -> dict[str, Any]:
    return {"name": "trainer", "command": [*FAKE, *args], "restartPolicyRules": list(rules)}


Build = Callable[..., KubeletModel]


@pytest.fixture
async def kubelet(tmp_path: Path) -> AsyncIterator[Build]:
    models: list[KubeletModel] = []

    def build(spec: dict[str, Any], relist: float = 0.1, backoff: float = 10.0) -> KubeletModel:
        model = KubeletModel(pod_spec(spec), tmp_path, relist=relist, backoff=backoff)
        models.append(model)
        model.start()
        return model

    yield build
    for model in models:
        await model.close()


async def test_the_first_matching_rule_decides(kubelet: Build, tmp_path: Path) -> None:
    rules = [
        {"action": "Restart", "exitCodes": {"operator": "In", "values": [3]}},
        {"action": "RestartAllContainers", "exitCodes": {"operator": "In", "values": [3, 4]}},
    ]
    trainer = main("--record", str(tmp_path / "runs"), "--exit-after", "0.2", "3", rules=rules)
    model = kubelet({"restartPolicy": "Never", "containers": [trainer]}, backoff=0.05)
    await until(lambda: len((tmp_path / "runs").read_text().split()) >= 2, 10)
    assert model.cycles == []  # Restart came first: the trainer alone restarts
    assert model.statuses["trainer"].restart_count >= 1
    assert model.phase == "Running"


async def test_the_phase_is_computed_before_restart_rules(kubelet: Build, tmp_path: Path) -> None:
    """The trainer dies (no rule covers 1) and the sidecar exits 88 in the same relist:
    the Pod is Failed, and the exit 88 restarts nothing."""
    cue, cue2 = tmp_path / "cue", tmp_path / "cue2"
    spec = {
        "restartPolicy": "Never",
        "initContainers": [sidecar(tmp_path, free_port(), "--exit-when", str(cue), "88")],
        "containers": [main("--exit-when", str(cue2), "1")],
    }
    model = kubelet(spec, relist=1.0)
    await until(lambda: model.statuses["trainer"].state == "running", 10)
    cue.touch()
    cue2.touch()
    assert await model.wait_phase("Failed", "Succeeded", within=10) == "Failed"
    assert model.cycles == []
    assert model.statuses["watcher"].exit_code == 88


async def test_a_rule_on_the_trainer_restarts_every_container(
    kubelet: Build, tmp_path: Path
) -> None:
    cue = tmp_path / "cue"
    spec = {
        "restartPolicy": "Never",
        "initContainers": [sidecar(tmp_path, free_port())],
        "containers": [main("--exit-when", str(cue), "1", rules=NOT_ZERO)],
    }
    model = kubelet(spec)
    await until(lambda: model.statuses["trainer"].state == "running", 10)
    cue.touch()
    await model.wait_cycles(1, within=10)
    await until(lambda: model.statuses["trainer"].state == "running", 10)
    for name in ("watcher", "trainer"):
        status = model.statuses[name]
        assert status.restart_count == 1
        assert status.last_state == {
            "terminated": {"exitCode": 137, "reason": RESTARTING, "message": REMOVED}
        }
    assert model.phase == "Running"


async def test_exit_88_restarts_all_and_reruns_init_containers_in_order(
    kubelet: Build, tmp_path: Path
) -> None:
    cue, runs = tmp_path / "cue", tmp_path / "init-runs"
    port = free_port()
    spec = {
        "restartPolicy": "Never",
        "initContainers": [
            {"name": "setup", "command": [*FAKE, "--record", str(runs), "--exit-after", "0", "0"]},
            sidecar(tmp_path, port, "--exit-when", str(cue), "88"),
        ],
        "containers": [main("--record", str(tmp_path / "trainer-runs"))],
    }
    model = kubelet(spec)
    trainer_runs = tmp_path / "trainer-runs"
    await until(trainer_runs.exists, 10)  # it started, and recorded it, before the cue
    order = [name for _, what, name in model.timeline if what == "start"]
    assert order == ["setup", "watcher", "trainer"]
    cue.touch()
    await model.wait_cycles(1, within=10)
    await until(lambda: len(trainer_runs.read_text().split()) == 2, 10)
    assert len(runs.read_text().split()) == 2  # the init container ran again
    assert model.statuses["setup"].restart_count == 1


async def test_the_restart_all_kill_gives_two_seconds(kubelet: Build, tmp_path: Path) -> None:
    cue = tmp_path / "cue"
    spec = {
        "restartPolicy": "Never",
        "initContainers": [sidecar(tmp_path, free_port(), "--exit-when", str(cue), "88")],
        "containers": [main("--on-sigterm", "ignore", "--record", str(tmp_path / "up"))],
    }
    model = kubelet(spec, relist=0.05)
    await until((tmp_path / "up").exists, 10)
    cue.touch()
    await model.wait_cycles(1, within=10)
    killed = [t for t, what, name in model.timeline if (what, name) == ("SIGKILL", "trainer")]
    cycle = model.cycles[0]
    assert len(killed) == 1
    assert KILL_GRACE - 0.1 <= killed[0] - cycle <= KILL_GRACE + 0.5


async def test_no_back_off_between_restart_all_cycles(kubelet: Build, tmp_path: Path) -> None:
    """An exit 88 right after every start: cycles follow each other as fast as containers
    start, while a crash-looping container alone would wait 10 s, 20 s, 40 s."""
    spec = {
        "restartPolicy": "Never",
        "initContainers": [sidecar(tmp_path, free_port(), "--exit-after", "0.3", "88")],
        "containers": [main()],
    }
    model = kubelet(spec, backoff=10.0)
    started = time.monotonic()
    await model.wait_cycles(3, within=15)
    assert time.monotonic() - started < 10.0
    assert model.statuses["watcher"].restart_count == 3


async def test_a_sidecar_gates_the_trainer_until_its_startup_probe_passes(
    kubelet: Build, tmp_path: Path
) -> None:
    late = sidecar(tmp_path, port := free_port())
    late["command"] = [
        sys.executable,
        "-c",
        f"import time, runpy, sys; time.sleep(0.8); "
        f"sys.argv=['x', '--serve', '{port}']; "
        f"runpy.run_path({FAKE[1]!r}, run_name='__main__')",
    ]
    model = kubelet({"restartPolicy": "Never", "initContainers": [late], "containers": [main()]})
    await until(lambda: model.statuses["trainer"].state == "running", 10)
    times = {(what, name): t for t, what, name in model.timeline}
    assert times[("start", "trainer")] - times[("start", "watcher")] >= 0.8
    assert times[("started", "watcher")] <= times[("start", "trainer")]


async def test_a_finished_trainer_ends_the_pod_and_a_late_88_is_ignored(
    kubelet: Build, tmp_path: Path
) -> None:
    spec = {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 5,
        "initContainers": [sidecar(tmp_path, free_port(), "--on-sigterm", "88")],
        "containers": [main("--exit-after", "0.3", "0")],
    }
    model = kubelet(spec)
    assert await model.wait_phase("Succeeded", "Failed", within=10) == "Succeeded"
    assert model.statuses["watcher"].exit_code == 88  # SIGTERM answered with 88: too late
    assert model.cycles == []


async def test_a_crashing_sidecar_restarts_alone_after_a_back_off(
    kubelet: Build, tmp_path: Path
) -> None:
    spec = {
        "restartPolicy": "Never",
        "initContainers": [sidecar(tmp_path, free_port(), "--exit-after", "0.3", "1")],
        "containers": [main()],
    }
    model = kubelet(spec, backoff=0.5)
    await until(lambda: model.statuses["watcher"].restart_count >= 2, 10)
    assert model.cycles == []
    assert model.statuses["trainer"].restart_count == 0
    backoffs = [what for _, what, name in model.timeline if name == "watcher" and "backoff" in what]
    assert backoffs[:2] == ["backoff 0.5s", "backoff 1s"]


async def until(condition: Callable[[], bool], within: float) -> None:
    await waiting.until(condition, within, ignore=(OSError,))  # files read mid-write
