"""Every fault in a real Pod ends in an in-place restart or a deliberate, explained stop.

The real watcher and the real launcher run as the containers of a Pod, started and
restarted by the kubelet model the way the kubelet does (phase first, then restart rules;
the 2 s kill; no back-off between restart-all cycles).
"""

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.workload import NCCL_TIMEOUT
from tests.kubelet.model import KubeletModel
from tests.kubelet.pods import TrainerPod, free_port, trainer_script

pytestmark = pytest.mark.slow

FATAL = f"print({NCCL_TIMEOUT!r}, flush=True)\n"
XID_79 = "NVRM: Xid (PCI:0000:3b:00): 79, pid=4242, name=python, GPU has fallen off the bus."
DEATHS = {
    "exit 1": "sys.exit(1)",
    "SIGKILL": "os.kill(os.getpid(), signal.SIGKILL)",
    "SIGSEGV": "import ctypes; ctypes.string_at(0)",
}
Run = Callable[..., KubeletModel]


@pytest.fixture
def pod(tmp_path: Path) -> TrainerPod:
    return TrainerPod(tmp_path, free_port())


@pytest.fixture
async def run(pod: TrainerPod) -> AsyncIterator[Run]:
    models: list[KubeletModel] = []

    def start(trainer: list[str], relist: float = 0.25, **watcher_env: str) -> KubeletModel:
        model = pod.model(pod.spec(trainer, watcher_env), relist=relist)
        models.append(model)
        model.start()
        return model

    yield start
    for model in models:
        await model.close()


@pytest.mark.parametrize("death", list(DEATHS))
async def test_the_trainer_dies_first_and_the_pod_restarts_in_place(
    pod: TrainerPod, run: Run, death: str
) -> None:
    """A fatal line, then the trainer dies within milliseconds: without the launcher the
    kubelet fails the Pod; with it, every container restarts in place, and the second
    start finishes the job."""
    trainer = trainer_script(f"if START == 1:\n    {FATAL}    {DEATHS[death]}\nsys.exit(0)")
    model = run(trainer, relist=1.0)
    assert await model.wait_phase("Succeeded", "Failed", within=40) == "Succeeded", model
    assert len(model.cycles) == 1
    [restart] = pod.ledger("restart")
    assert restart["reason"] == "NcclWatchdogTimeout"
    assert restart["details"]["launcher_start"] == 1
    assert model.statuses["trainer"].restart_count == 1


async def test_the_watcher_fires_first_while_the_trainer_still_runs(
    pod: TrainerPod, run: Run
) -> None:
    trainer = trainer_script(f"if START == 1:\n    {FATAL}    time.sleep(60)\nsys.exit(0)")
    model = run(trainer)
    assert await model.wait_phase("Succeeded", "Failed", within=40) == "Succeeded", model
    assert len(model.cycles) == 1
    assert [e["reason"] for e in pod.ledger("restart")] == ["NcclWatchdogTimeout"]


async def test_both_within_the_same_second(pod: TrainerPod, run: Run) -> None:
    trainer = trainer_script(f"if START == 1:\n    {FATAL}    time.sleep(0.4)\n    sys.exit(3)\n")
    model = run(trainer, relist=1.0)
    assert await model.wait_phase("Succeeded", "Failed", within=40) == "Succeeded", model
    assert len(model.cycles) == 1


async def test_a_fault_on_every_start_restarts_within_the_budget_then_fails(
    pod: TrainerPod, run: Run
) -> None:
    trainer = trainer_script(f"{FATAL}sys.exit(1)")
    model = run(trainer, WATCHER_MAX_RESTARTS="2", WATCHER_RESTART_BACKOFF="1.5")
    assert await model.wait_phase("Succeeded", "Failed", within=60) == "Failed", model
    restarts = pod.ledger("restart")
    assert len(model.cycles) == 2 == len(restarts)
    gap = restarts[1]["time"] - restarts[0]["time"]  # the kubelet sees exits per relist
    assert gap >= 1.5, f"the second restart came {gap:.2f}s after the first"
    [failed] = pod.ledger("fail")
    assert "restart budget exhausted (2 restarts" in failed["explanation"]
    message = model.statuses["trainer"].message or ""
    assert "restart budget exhausted" in message and "exit code 1" in message
    assert model.statuses["trainer"].exit_code == 1


async def test_a_hang_with_the_budget_spent_is_stopped_and_the_pod_fails(
    pod: TrainerPod, run: Run
) -> None:
    trainer = trainer_script("print('step 1', flush=True)\ntime.sleep(600)")
    model = run(
        trainer, WATCHER_MAX_RESTARTS="0", WATCHER_SILENCE_TIMEOUT="1", WATCHER_STOP_GRACE="3"
    )
    assert await model.wait_phase("Succeeded", "Failed", within=30) == "Failed", model
    assert model.cycles == []
    [failed] = pod.ledger("fail")
    assert failed["reason"] == "LogSilence"
    assert model.statuses["trainer"].exit_code == 128 + 15  # stopped with SIGTERM
    assert "LogSilence" in (model.statuses["trainer"].message or "")


async def test_a_successful_run_succeeds(pod: TrainerPod, run: Run) -> None:
    model = run(trainer_script("print('done', flush=True)"))
    assert await model.wait_phase("Succeeded", "Failed", within=30) == "Succeeded", model
    assert model.cycles == [] and pod.ledger() == []
    assert model.statuses["pod-watcher"].exit_code == 0  # SIGTERM: a clean stop


async def test_a_hardware_fault_without_api_access_fails_the_pod_with_the_reason(
    pod: TrainerPod, run: Run
) -> None:
    model = run(trainer_script(f"print({XID_79!r}, flush=True)\ntime.sleep(600)"))
    assert await model.wait_phase("Succeeded", "Failed", within=30) == "Failed", model
    assert model.cycles == []
    [failed] = pod.ledger("fail")
    assert failed["fault_class"] == "hardware"
    assert "eviction needs the Kubernetes API; failing the Pod" in failed["explanation"]
    assert "fallen off the bus" in "\n".join(failed["evidence"])


async def test_without_the_launcher_the_kubelet_fails_the_pod(pod: TrainerPod) -> None:
    """Today's recipe (the trainer tees its output into a log, no launcher): the trainer's
    exit 1 ends the Pod before the watcher's exit 88 is looked at."""
    log = pod.root / "train.log"
    spec = pod.spec(
        trainer_script(f"open({str(log)!r}, 'a').write({NCCL_TIMEOUT!r} + '\\n')\nsys.exit(1)"),
        {"WATCHER_LOG_PATHS": str(log), "WATCHER_LAUNCHER_DIR": ""},
    )
    spec["containers"][0]["command"] = spec["containers"][0]["command"][3:]  # no launcher
    model = pod.model(spec, relist=1.0)
    model.start()
    try:
        assert await model.wait_phase("Succeeded", "Failed", within=30) == "Failed", model
        assert model.cycles == []
    finally:
        await model.close()


async def test_after_a_restart_the_reason_is_in_the_status_and_the_ledger(
    pod: TrainerPod, run: Run
) -> None:
    trainer = trainer_script(f"if START == 1:\n    {FATAL}    sys.exit(1)\ntime.sleep(60)")
    model = run(trainer)
    await model.wait_cycles(1, within=30)
    status = await _status_when(
        pod, model, lambda s: s["monitors"]["workload"]["launcher_start"] == 2
    )
    last = status["last_restart"]
    assert (last["reason"], last["action"]) == ("NcclWatchdogTimeout", "restart")
    assert NCCL_TIMEOUT in last["evidence"]
    assert status["budget"]["restarts_in_window"] == 1
    assert status["start"]["mode"] == "after_restart"
    # the kubelet shows 137 / RestartingAllContainers for every container: our reason is gone
    assert model.statuses["pod-watcher"].last_state is not None
    assert model.statuses["pod-watcher"].last_state["terminated"]["exitCode"] == 137


def _second_start(status: dict[str, Any]) -> bool:
    return bool(status["monitors"]["workload"]["launcher_start"] == 2)


async def _status_when(
    pod: TrainerPod, model: KubeletModel, predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    import asyncio
    import time

    deadline = time.monotonic() + 20
    while True:
        try:
            status = await asyncio.to_thread(pod.status)
            if predicate(status):
                return status
        except (OSError, KeyError, TypeError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no such status in time\n{model}")
        await asyncio.sleep(0.1)
