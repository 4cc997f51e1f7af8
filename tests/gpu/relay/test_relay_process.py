"""The GPU relay as the trainer's container runs it: started by the real launcher when the
watcher asked, reading the fake nvidia-smi there, never in the workload's way, and gone
with the launcher."""

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gpu.fake_smi import SCRIPT, UUIDS, FakeSmi, alive, make
from tests.gpu.relay.launched import TrainerContainer, trainer_container, trainer_env
from tests.waiting import wait_until
from watcher.gpu.backends.relay_files import Report
from watcher.launcher.gpu_relay import NICENESS, RELAY_LOCK, REPORT

pytestmark = pytest.mark.slow


@pytest.fixture
def smi(tmp_path: Path) -> FakeSmi:
    return make(tmp_path / "smi")


@pytest.fixture
def trainer(tmp_path: Path, smi: FakeSmi) -> Iterator[TrainerContainer]:
    with trainer_container(tmp_path, smi) as container:
        yield container


def polled(report: Report) -> bool:
    return report.poll is not None and report.poll.get("code") == 0


def nice_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
        return int(stat.read().rsplit(") ", 1)[1].split()[16])


def test_the_relay_reports_the_trainer_s_gpus_and_ends_with_the_launcher(
    trainer: TrainerContainer,
) -> None:
    trainer.ask(period=0.1)
    launcher = trainer.launch()
    report = trainer.report_when(lambda r: polled(r) and r.cost.get("polls", 0) >= 3)
    assert report.uuids == UUIDS and report.evidence == f"NVIDIA_VISIBLE_DEVICES={','.join(UUIDS)}"
    assert (report.tool, report.tool_path, report.start) == ("nvidia-smi", str(SCRIPT), 1)
    assert report.poll is not None and UUIDS[1] in report.poll["stdout"]
    assert report.poll["args"][0].startswith("--query-gpu=uuid,pci.bus_id,")
    assert report.cost["children_cpu_s"] > 0 and report.done is None
    assert trainer.files.relay_alive() and trainer.files.launcher_running()
    relay = report.pid
    assert os.getsid(relay) == relay  # a session of its own: the workload's signals miss it
    assert nice_of(relay) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICENESS)
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(5) == 128 + signal.SIGTERM
    wait_until(lambda: not alive(relay), 5, "the relay to end with the launcher")
    assert not trainer.files.relay_alive()


def test_without_a_request_no_relay_starts(trainer: TrainerContainer, smi: FakeSmi) -> None:
    trainer.launch()
    wait_until(trainer.files.launcher_running, 10, "the launcher")
    time.sleep(0.5)
    assert not (trainer.root / "run" / REPORT).exists()
    assert not (trainer.root / "run" / RELAY_LOCK).exists()
    assert smi.runs() == []


def test_a_hung_nvidia_smi_stalls_neither_the_output_nor_the_signals(
    trainer: TrainerContainer, smi: FakeSmi
) -> None:
    smi.set("hang")
    trainer.ask(period=0.1, timeout=30.0)
    ticks = "import time\nfor i in range(1000):\n    print('tick', i, flush=True); time.sleep(0.02)"
    launcher = trainer.launch([trainer_python(), "-c", ticks])
    hung = wait_until(lambda: smi.pids() or None, 10, "nvidia-smi to hang")[0]
    log = trainer.root / "logs" / "workload.log"
    wait_until(lambda: log.exists() and log.read_text().count("tick") >= 20, 10, "the output")
    assert alive(hung), "the output was copied while nvidia-smi hung"
    started = time.monotonic()
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(5) == 128 + signal.SIGTERM
    assert time.monotonic() - started < 2.0
    wait_until(lambda: not alive(hung), 5, "the hung nvidia-smi, killed with the relay")


def test_a_late_nvidia_smi_is_killed_and_reported(trainer: TrainerContainer, smi: FakeSmi) -> None:
    smi.set("hang")
    trainer.ask(period=0.2, timeout=0.5)
    trainer.launch()
    report = trainer.report_when(lambda r: r.poll is not None and r.poll["timed_out"])
    assert report.poll is not None and report.poll["code"] is None
    first_request = report.poll["request"]
    hung = smi.pids()[0]
    wait_until(lambda: not alive(hung), 5, "the late nvidia-smi to be killed")
    smi.set("healthy")
    trainer.ask(period=0.2, timeout=5.0)  # a new request is read at the next period
    report = trainer.report_when(polled)
    assert report.poll is not None and report.poll["request"] != first_request


def test_a_container_without_gpus_or_tools_ends_the_relay_at_once(
    trainer: TrainerContainer, smi: FakeSmi
) -> None:
    if list(Path("/dev").glob("nvidia[0-9]*")):
        pytest.skip("this machine has GPU device nodes")
    trainer.ask()
    env = {"POD_WATCHER_GPU_TOOL": "nvidia-smi", "PATH": "/usr/bin:/bin"}
    trainer.launch(env=env)
    report = trainer.report_when(lambda r: r.done is not None)
    assert report.done is not None and "no GPU in the trainer's container" in report.done
    assert "nvidia-smi is not on the trainer's PATH" in report.done
    wait_until(lambda: not trainer.files.relay_alive(), 5, "the relay to end")
    assert trainer.files.launcher_running() and smi.runs() == []


def test_identity_from_the_environment_runs_no_tool(
    trainer: TrainerContainer, smi: FakeSmi
) -> None:
    trainer.ask(read="identity")
    trainer.launch()
    report = trainer.report_when(lambda r: r.seq >= 4)
    assert report.uuids == UUIDS and report.poll is None
    assert smi.runs() == []


def test_identity_without_the_environment_asks_the_tool_once(
    trainer: TrainerContainer, smi: FakeSmi
) -> None:
    trainer.ask(read="identity")
    trainer.launch(env=trainer_env(smi, gpus=False))
    report = trainer.report_when(lambda r: r.seq >= 4)
    assert report.uuids == () and report.poll is not None and report.poll["code"] == 0
    assert smi.runs() == ["--query-gpu=uuid,pci.bus_id,index,name --format=csv,nounits"]


def test_the_relay_ends_when_the_watcher_takes_its_request_back(
    trainer: TrainerContainer,
) -> None:
    trainer.ask()
    trainer.launch()
    trainer.report_when(polled)
    (trainer.root / "run" / "gpu-relay.json").unlink()
    report = trainer.report_when(lambda r: r.done is not None)
    assert report.done == "the watcher took its request back"
    wait_until(lambda: not trainer.files.relay_alive(), 5, "the relay to end")


def test_a_killed_relay_leaves_the_workload_alone(trainer: TrainerContainer) -> None:
    trainer.ask()
    launcher = trainer.launch([trainer_python(), "-c", "import time; time.sleep(1.5)"])
    report = trainer.report_when(polled)
    os.kill(report.pid, signal.SIGKILL)
    wait_until(lambda: not trainer.files.relay_alive(), 5, "the relay's lock to be free")
    assert launcher.poll() is None
    assert launcher.wait(10) == 0  # no watcher: the command's own code


def trainer_python() -> str:
    from tests.launcher.test_launcher import interpreter

    return interpreter()
