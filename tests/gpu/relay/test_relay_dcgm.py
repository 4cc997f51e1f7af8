"""dcgm-exporter sees every GPU of the node. Under the device plugin the trainer's GPU
UUIDs are known only once its container runs: the launcher's relay reports them, and from
then on a series of any other GPU is ignored, whatever its labels say."""

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.gpu.backends.test_dcgm import OURS, THEIRS, Exporter, metrics
from tests.gpu.fake_smi import FakeSmi, make
from tests.gpu.relay.launched import TrainerContainer, trainer_container, trainer_env
from tests.waiting import wait_until
from watcher.gpu.backends.dcgm import DcgmBackend
from watcher.gpu.backends.relay import RelayUuids
from watcher.gpu.classification.classifier import GpuClassifier
from watcher.gpu.model import ToolProblem
from watcher.gpu.ours import NOBODY
from watcher.types import Finding

pytestmark = pytest.mark.slow


@pytest.fixture
async def exporter() -> AsyncIterator[Exporter]:
    server = Exporter()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def trainer(tmp_path: Path) -> Iterator[TrainerContainer]:
    smi: FakeSmi = make(tmp_path / "smi")
    with trainer_container(tmp_path, smi) as container:
        yield container


@pytest.mark.parametrize("pod", [None, (None, "other-0")])
async def test_another_gpu_s_series_is_ignored_once_the_relay_names_ours(
    exporter: Exporter,
    session: aiohttp.ClientSession,
    trainer: TrainerContainer,
    pod: tuple[None, str] | None,
) -> None:
    """``pod`` names the Pod the exporter (wrongly) maps the other GPU to: known UUIDs
    decide over the labels."""
    exporter.body = metrics(
        theirs={"DCGM_FI_DEV_ROW_REMAP_FAILURE": 1, "DCGM_FI_DEV_XID_ERRORS": 79}
    )
    source = RelayUuids(trainer.files, period=0.1, timeout=2.0)
    backend = DcgmBackend(exporter.url, 2.0, session=session, pod=pod, uuid_source=source)
    classifier = GpuClassifier(live=True)
    before = await backend.poll()  # asks the relay; the trainer has not started
    if pod is None:
        assert before.readings == () and before.failures[0].detail == NOBODY
    env = trainer_env(trainer.smi)
    env["NVIDIA_VISIBLE_DEVICES"] = OURS  # the device plugin's default: the GPUs' UUIDs
    trainer.launch(env=env)
    wait_until(lambda: source() or None, 10, "the trainer's UUIDs", trainer.describe)
    findings: list[Finding] = []
    for _ in range(3):
        snapshot = await backend.poll()
        findings += classifier.classify(snapshot, 0.0)
        assert [r.gpu.uuid for r in snapshot.readings] == [OURS], snapshot
        assert snapshot.failures == ()
    exporter.body = metrics(
        ours={"DCGM_FI_DEV_ROW_REMAP_FAILURE": 1},
        theirs={"DCGM_FI_DEV_ROW_REMAP_FAILURE": 1, "DCGM_FI_DEV_XID_ERRORS": 48},
    )
    findings += classifier.classify(await backend.poll(), 0.0)
    assert [f.reason for f in findings] == ["GpuRowRemapFailure"]  # ours only
    assert all(f.gpu is not None and OURS in f.gpu for f in findings)
    assert THEIRS not in str(backend.status())
    assert trainer.smi.runs() == []  # the UUIDs came from NVIDIA_VISIBLE_DEVICES


async def test_uuids_that_no_series_carries_are_said(
    exporter: Exporter, session: aiohttp.ClientSession, trainer: TrainerContainer
) -> None:
    source = RelayUuids(trainer.files, period=0.1, timeout=2.0)
    backend = DcgmBackend(exporter.url, 2.0, session=session, uuid_source=source)
    await backend.poll()
    env = {**trainer_env(trainer.smi), "NVIDIA_VISIBLE_DEVICES": "GPU-elsewhere-0001"}
    trainer.launch(env=env)
    wait_until(lambda: source() or None, 10, "the trainer's UUIDs", trainer.describe)
    snapshot = await backend.poll()
    assert snapshot.readings == ()
    assert [f.problem for f in snapshot.failures] == [ToolProblem.NOT_LISTED]
    assert "belongs to GPU-elsewhere-0001" in snapshot.failures[0].detail
    assert "--kubernetes" not in snapshot.failures[0].detail
