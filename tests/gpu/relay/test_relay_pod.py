"""A GPU Pod as the default manifest wires it (the trainer holds the GPUs, the watcher none)
run through the kubelet model: the real watcher as a native sidecar, the real launcher in
the trainer's container with the fake nvidia-smi the NVIDIA container toolkit would put
there. A GPU that goes from healthy to unreachable is one hardware finding, which fails
the Pod without API access and evicts it with, and is never an exit 88."""

import asyncio
import os
import signal
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gpu.fake_smi import UUIDS, FakeSmi, make
from tests.gpu.relay.launched import trainer_env
from tests.kube.fake_api import ThreadedFakeApi, write_kubeconfig
from tests.kube.manifests import TRAINER, WATCHER
from tests.kubelet.model import KubeletModel
from tests.kubelet.pods import TrainerPod, free_port, trainer_script
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

TRAINING = "print('step 1', flush=True)\ntime.sleep(600)"
GPU_WATCHING = {"WATCHER_GPU_POLL_INTERVAL": "0.2", "WATCHER_GPU_TIMEOUT": "5"}
Start = Callable[..., KubeletModel]


@pytest.fixture
def pod(tmp_path: Path) -> TrainerPod:
    return TrainerPod(tmp_path, free_port())


@pytest.fixture
def smi(tmp_path: Path) -> FakeSmi:
    return make(tmp_path / "smi")


@pytest.fixture
async def start(pod: TrainerPod, smi: FakeSmi) -> AsyncIterator[Start]:
    models: list[KubeletModel] = []

    def run(**watcher_env: str) -> KubeletModel:
        spec = pod.spec(trainer_script(TRAINING), {**GPU_WATCHING, **watcher_env},
                        trainer_env(smi))  # fmt: skip
        model = pod.model(spec)
        models.append(model)
        model.start()
        return model

    yield run
    for model in models:
        await model.close()


@pytest.fixture
def api() -> Iterator[ThreadedFakeApi]:
    with ThreadedFakeApi() as fake:
        yield fake
        assert fake.api.errors == [], "the watcher sent something the API schemas reject"


async def status_when(
    pod: TrainerPod, model: KubeletModel, predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
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


def relaying(status: dict[str, Any]) -> bool:
    gpu = status["monitors"]["gpu"]
    return bool(gpu["backend"] == "relay" and gpu["up"] and len(gpu["gpus"]) == 2)


def hardware(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("fault_class") == "hardware"]


@pytest.mark.parametrize("backend", ["auto", "relay"])
async def test_a_lost_gpu_without_api_access_fails_the_pod_once(
    pod: TrainerPod, smi: FakeSmi, start: Start, backend: str
) -> None:
    model = start(WATCHER_GPU=backend)
    status = await status_when(pod, model, relaying)
    gpu = status["monitors"]["gpu"]
    assert sorted(gpu["gpus"]) == [f"{UUIDS[0]} 0000:18:00", f"{UUIDS[1]} 0000:2a:00"]
    assert gpu["tool"]["uuids"] == list(UUIDS) and gpu["tool"]["tool"] == "nvidia-smi"
    assert status["recent_findings"][-1]["reason"] == "WorkloadStarted"  # healthy GPUs
    smi.set("driver")  # "couldn't communicate with the NVIDIA driver", exit 9
    status = await status_when(pod, model, lambda s: bool(hardware(s["recent_findings"])))
    assert await model.wait_phase("Succeeded", "Failed", within=30) == "Failed", model
    assert model.cycles == [] and model.statuses[WATCHER].exit_code != 88
    (finding,) = hardware(status["recent_findings"])
    assert (finding["reason"], finding["source"]) == ("GpuUnreachable", "gpu/relay")
    (failed,) = pod.ledger("fail")
    assert (failed["reason"], failed["fault_class"]) == ("GpuUnreachable", "hardware")
    assert "eviction needs the Kubernetes API; failing the Pod" in failed["explanation"]
    assert hardware(pod.ledger()) == [failed] and pod.ledger("restart") == []
    decided = [r for r in pod.watcher_records() if r.get("event") == "decision"]
    assert [r["reason"] for r in hardware(decided)] == ["GpuUnreachable"]
    assert "GpuUnreachable" in (model.statuses[TRAINER].message or "")


async def test_a_lost_gpu_with_api_access_evicts_the_pod_once(
    pod: TrainerPod, smi: FakeSmi, start: Start, api: ThreadedFakeApi
) -> None:
    config = pod.root / "kubeconfig"
    write_kubeconfig(config, api.url, "fake-token")
    model = start(
        WATCHER_GPU="relay", KUBECONFIG=str(config), WATCHER_POD_NAME=TRAINER,
        WATCHER_POD_NAMESPACE="default", WATCHER_CONTAINER_NAME=WATCHER, WATCHER_API_TIMEOUT="1",
    )  # fmt: skip
    await status_when(pod, model, relaying)
    smi.set("lost 1")  # "Unable to determine the device handle for GPU...", exit 15
    status = await status_when(pod, model, lambda s: s["state"] == "evicting")
    (eviction,) = await asyncio.to_thread(
        wait_until, lambda: api.api.evictions or None, 5, "the eviction"
    )
    assert eviction["metadata"]["name"] == TRAINER
    assert "GpuLost" in status["stopped_acting"]
    found = hardware(status["recent_findings"])
    assert [(f["reason"], f["gpu"]) for f in found] == [("GpuLost", "0000:2a:00")], found
    (evicted,) = await asyncio.to_thread(
        wait_until, lambda: pod.ledger("evict") or None, 5, "the evict entry"
    )
    assert evicted["reason"] == "GpuLost" and evicted["exit_code"] is None
    await asyncio.sleep(1.0)  # the watcher stays, acting no more: no exit 88, no restart
    assert model.cycles == [] and model.statuses[WATCHER].state == "running"
    # The fake serves manifests/pod.yaml, whose launcher path is not this model's: hence
    # a WorkloadNotLaunched wiring Event beside the decision's.
    decided = [e["reason"] for e in api.api.events if e["reason"] != "WorkloadNotLaunched"]
    assert decided == ["EvictingPod"]
    assert len(api.api.evictions) == 1 and pod.ledger("restart") == []


async def test_a_relay_that_died_is_a_warning_where_people_look(
    pod: TrainerPod, start: Start
) -> None:
    model = start(WATCHER_GPU="relay")
    status = await status_when(pod, model, relaying)
    relay = status["monitors"]["gpu"]["tool"]["relay_pid"]
    os.kill(relay, signal.SIGKILL)  # the trainer's container goes on
    status = await status_when(
        pod, model, lambda s: any(f["reason"] == "GpuRelayDown" for f in s["recent_findings"])
    )
    (finding,) = [f for f in status["recent_findings"] if f["reason"] == "GpuRelayDown"]
    assert (finding["severity"], finding["fault_class"]) == ("warning", "infrastructure")
    gpu = status["monitors"]["gpu"]
    assert gpu["up"] is False and [f["problem"] for f in gpu["failures"]] == ["relay_down"]
    assert "no GPU relay runs in the trainer's container" in gpu["tool"]["state"]
    assert status["state"] == "watching" and model.phase == "Running"
    metrics = await asyncio.to_thread(_metrics, pod.port)
    assert 'watcher_monitor_up{monitor="gpu"} 0.0' in metrics
    assert "watcher_gpu_relay_cpu_seconds_total" in metrics


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())
