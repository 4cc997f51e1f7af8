"""The DCGM backend against a real aiohttp server serving dcgm-exporter metrics, and a
fake dcgmi."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import FIXTURES
from tests.gpu.fake_smi import SCRIPT
from tests.serving import LoopbackServer
from watcher.gpu.backends.dcgm import DcgmBackend
from watcher.gpu.classification.classifier import GpuClassifier
from watcher.gpu.model import Recovery, Snapshot, ToolProblem

DCGMI = str(SCRIPT.parent / "dcgmi")
REAL_UUID = "GPU-a8394b51-c086-568a-9f1a-c1e1c934c44c"
OURS = "GPU-0000aaaa-0000-0000-0000-000000000001"
THEIRS = "GPU-0000bbbb-0000-0000-0000-000000000002"


def capture(name: str) -> str:
    """A real capture from tests/gpu/captures."""
    return (FIXTURES / name).read_text("utf-8")


def series(name: str, gpu: int, uuid: str, pod: str, value: float) -> str:
    labels = (
        f'gpu="{gpu}",UUID="{uuid}",pci_bus_id="00000000:{0x18 + gpu:02X}:00.0",'
        f'device="nvidia{gpu}",modelName="NVIDIA H100 80GB HBM3",Hostname="node-1",'
        f'container="trainer",namespace="ml",pod="{pod}"'
    )
    return f"{name}{{{labels}}} {value}\n"


def metrics(ours: dict[str, float] | None = None, theirs: dict[str, float] | None = None) -> str:
    """Two GPUs of one node: ours (pod ml/trainer-0) and another Pod's."""
    base = {
        "DCGM_FI_DEV_XID_ERRORS": 0,
        "DCGM_FI_DEV_ROW_REMAP_FAILURE": 0,
        "DCGM_FI_DEV_PCIE_REPLAY_COUNTER": 3,
        "DCGM_FI_DEV_GPU_TEMP": 41,
    }
    text = ""
    for name in base:
        text += f"# HELP {name} help\n# TYPE {name} gauge\n"
        text += series(name, 0, OURS, "trainer-0", {**base, **(ours or {})}[name])
        text += series(name, 1, THEIRS, "other-0", {**base, **(theirs or {})}[name])
    return text


class Exporter:
    """A dcgm-exporter stand-in: `/metrics` answers `body` with `status`, or hangs."""

    def __init__(self) -> None:
        self.body = metrics()
        self.status = 200
        self.hang = False
        self.release = asyncio.Event()
        self.port = 0
        self._server: LoopbackServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    async def handle(self, request: web.Request) -> web.Response:
        if self.hang:
            await self.release.wait()
        return web.Response(text=self.body, status=self.status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self.handle)
        self._server = LoopbackServer(app, shutdown_timeout=0.5)
        self.port = await self._server.start()

    async def stop(self) -> None:
        self.release.set()
        if self._server is not None:
            await self._server.stop()


@pytest.fixture
async def exporter() -> AsyncIterator[Exporter]:
    server = Exporter()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def problems(snapshot: Snapshot) -> list[ToolProblem]:
    return [f.problem for f in snapshot.failures]


async def test_keeps_only_our_gpu_by_uuid(
    exporter: Exporter, session: aiohttp.ClientSession
) -> None:
    backend = DcgmBackend(exporter.url, 2.0, session=session, uuids=[OURS])
    snapshot = await backend.poll()
    assert snapshot.failures == ()
    (reading,) = snapshot.readings
    assert (reading.gpu.uuid, reading.gpu.bus_id, reading.gpu.index) == (OURS, "0000:18:00", 0)
    assert (reading.xid, reading.remapped_rows_failure, reading.pcie_replays) == (0, False, 3)


async def test_keeps_only_our_gpu_by_the_pod_labels(
    exporter: Exporter, session: aiohttp.ClientSession
) -> None:
    backend = DcgmBackend(exporter.url, 2.0, session=session, pod=("ml", "trainer-0"))
    assert [r.gpu.uuid for r in (await backend.poll()).readings] == [OURS]
    elsewhere = DcgmBackend(exporter.url, 2.0, session=session, pod=("other-ns", "trainer-0"))
    snapshot = await elsewhere.poll()
    assert snapshot.readings == ()
    assert problems(snapshot) == [ToolProblem.NOT_LISTED]
    assert "--kubernetes" in snapshot.failures[0].detail


async def test_the_real_exporter_output_is_read_for_its_pod(
    exporter: Exporter, session: aiohttp.ClientSession
) -> None:
    # one RTX 4000 Ada mapped to pod default/cuda-75454ffb9f-8ljq7, from a real exporter
    exporter.body = capture("dcgm-exporter-metrics-k8s-rtx4000ada.prom")
    backend = DcgmBackend(exporter.url, 2.0, session=session, pod=(None, "cuda-75454ffb9f-8ljq7"))
    (reading,) = (await backend.poll()).readings
    assert reading.gpu.uuid == REAL_UUID


async def test_without_uuids_or_pod_no_gpu_of_the_node_is_taken_for_ours(
    exporter: Exporter, session: aiohttp.ClientSession
) -> None:
    snapshot = await DcgmBackend(exporter.url, 2.0, session=session).poll()
    assert snapshot.readings == ()
    assert problems(snapshot) == [ToolProblem.NOT_LISTED]
    assert "WATCHER_GPU_UUIDS" in snapshot.failures[0].detail


async def test_another_pods_fault_is_not_ours_and_ours_is(
    exporter: Exporter, session: aiohttp.ClientSession
) -> None:
    backend = DcgmBackend(exporter.url, 2.0, session=session, uuids=[OURS])
    classifier = GpuClassifier()
    assert classifier.classify(await backend.poll(), 1.0) == []
    exporter.body = metrics(theirs={"DCGM_FI_DEV_XID_ERRORS": 79})
    assert classifier.classify(await backend.poll(), 2.0) == []
    exporter.body = metrics(ours={"DCGM_FI_DEV_ROW_REMAP_FAILURE": 1})
    (finding,) = classifier.classify(await backend.poll(), 3.0)
    assert (finding.reason, finding.fault_class.value) == ("GpuRowRemapFailure", "hardware")


async def test_an_exporter_that_fails_is_a_tool_failure(
    exporter: Exporter, session: aiohttp.ClientSession
) -> None:
    backend = DcgmBackend(exporter.url, 2.0, session=session, uuids=[OURS])
    exporter.status = 503
    snapshot = await backend.poll()
    assert problems(snapshot) == [ToolProblem.FAILED]
    assert "HTTP 503" in snapshot.failures[0].detail
    exporter.status, exporter.body = 200, "<html>not metrics</html>"
    assert problems(await backend.poll()) == [ToolProblem.FAILED]


async def test_a_hanging_exporter_times_out(
    exporter: Exporter, session: aiohttp.ClientSession
) -> None:
    exporter.hang = True
    backend = DcgmBackend(exporter.url, 0.2, session=session, uuids=[OURS])
    snapshot = await asyncio.wait_for(backend.poll(), 2)
    assert problems(snapshot) == [ToolProblem.TIMED_OUT]


async def test_an_exporter_that_is_not_there_is_a_failure(tmp_path: Path) -> None:
    backend = DcgmBackend("http://127.0.0.1:9/metrics", 1.0, uuids=[OURS])  # its own session
    snapshot = await backend.poll()
    assert problems(snapshot) == [ToolProblem.FAILED]
    await backend.close()


async def test_a_body_over_the_cap_is_refused(
    exporter: Exporter, session: aiohttp.ClientSession
) -> None:
    exporter.body = metrics() * 100
    backend = DcgmBackend(exporter.url, 2.0, session=session, uuids=[OURS], max_body=4096)
    snapshot = await backend.poll()
    assert problems(snapshot) == [ToolProblem.FAILED]
    assert "more than 4096 bytes" in snapshot.failures[0].detail


class Dcgmi:
    """What the fake dcgmi prints next."""

    def __init__(self, state: Path) -> None:
        self.state = state

    def prints(self, text: str) -> None:
        self.state.write_text(text, "utf-8")


@pytest.fixture
def dcgmi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Dcgmi:
    state = tmp_path / "dcgmi-state"
    monkeypatch.setenv("FAKE_DCGMI_STATE", str(state))
    return Dcgmi(state)


async def test_dcgmi_health_is_added_to_our_gpu_by_its_dcgm_id(
    exporter: Exporter, session: aiohttp.ClientSession, dcgmi: Dcgmi
) -> None:
    dcgmi.prints(capture("dcgmi-health-check-warning-nvidia-docs-example.txt"))
    backend = DcgmBackend(exporter.url, 2.0, session=session, uuids=[OURS], dcgmi=DCGMI)
    snapshot = await backend.poll()
    (reading,) = snapshot.readings
    assert reading.health == {"PCIe system": "Warning"}  # GPU 1's InfoROM is not ours
    (finding,) = GpuClassifier().classify(snapshot, 1.0)
    assert (finding.reason, finding.severity.value) == ("DcgmHealthWarning", "warning")
    assert backend.dcgmi_problem is None


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ("Error: Health watches not enabled. Please enable watches.\n", "not enabled"),
        ("hang", "TimeoutError"),
    ],
)
async def test_a_dcgmi_that_cannot_answer_is_noted_and_the_poll_goes_on(
    exporter: Exporter,
    session: aiohttp.ClientSession,
    dcgmi: Dcgmi,
    output: str,
    problem: str,
) -> None:
    dcgmi.prints(output)
    exporter.body = metrics(ours={"DCGM_FI_DEV_XID_ERRORS": 0})
    backend = DcgmBackend(exporter.url, 0.5, session=session, uuids=[OURS], dcgmi=DCGMI)
    snapshot = await backend.poll()
    assert snapshot.failures == () and len(snapshot.readings) == 1
    assert backend.dcgmi_problem is not None and problem in backend.dcgmi_problem
    await backend.close()


async def test_recovery_action_from_the_exporter(
    exporter: Exporter, session: aiohttp.ClientSession
) -> None:
    exporter.body = metrics() + series("DCGM_FI_DEV_GPU_RECOVERY_ACTION", 0, OURS, "trainer-0", 1)
    backend = DcgmBackend(exporter.url, 2.0, session=session, uuids=[OURS])
    (reading,) = (await backend.poll()).readings
    assert reading.recovery_action is Recovery.GPU_RESET
