"""What the launcher's GPU relay costs, in the watcher and in the trainer's container.

    python -m bench.gpu_relay [--polls N] [--gpus N] [--json FILE]

- **In the watcher**: one GPU monitor poll (`GpuMonitor.poll_once`: the relay backend
  reads and parses the report, the poll is filtered and counted) plus the classifier, on
  a fresh 8-GPU report each time (what the relay writes; the writing is not counted).
  Baseline in the same run: the same poll of the nvidia-smi backend running the `/bin/sh`
  fake that only `cat`s the same CSV (the floor of any local nvidia-smi poll). Goal:
  at most 5 ms of CPU per poll.
- **In the trainer's container**: the real launcher running `sleep` with the relay at a
  0.1 s period, once with each fake nvidia-smi (the Python test script: a Python start
  per run; the `/bin/sh` cat: the floor of a fork and exec). The relay's own CPU and its
  children's per poll come from its reports (`os.times()`), between two reports, so its
  start is not spread over the polls; the start is shown apart. The relay's NVML path:
  one read of 8 GPUs of the tests' fake `pynvml` (a thread and the calls; real NVML adds
  a few ioctls per call).

A real nvidia-smi costs far more CPU per run than either fake (it loads NVML and opens
every GPU); no GPU machine was at hand to measure it.
"""

import argparse
import asyncio
import fcntl
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.gpu_poll import cat_fake
from tests.gpu.fake_pynvml import FakeNvml, h100s
from tests.gpu.fake_smi import SCRIPT
from watcher.clock import SystemClock
from watcher.gpu.backends.relay import RelayBackend, request
from watcher.gpu.backends.relay_files import RelayFiles
from watcher.gpu.backends.smi import SmiBackend
from watcher.gpu.classification.classifier import GpuClassifier
from watcher.gpu.formats.smi_csv import QUERY_FIELDS
from watcher.gpu.monitor import GpuMonitor
from watcher.gpu.ours import OurGpus
from watcher.launcher.channel import LAUNCHER_LOCK
from watcher.launcher.gpu_read import Nvml
from watcher.launcher.gpu_relay import RELAY_LOCK, REPORT
from watcher.workload.install import install

GOAL_MS = 5.0
WARMUP = 3


@dataclass(frozen=True)
class WatcherCost:
    what: str
    polls: int
    gpus: int
    cpu_ms_p50: float
    cpu_ms_mean: float
    cpu_ms_p95: float
    cpu_ms_max: float


@dataclass(frozen=True)
class TrainerCost:
    tool: str
    polls: int
    relay_cpu_ms_per_poll: float
    children_cpu_ms_per_poll: float
    relay_start_cpu_ms: float


# -- in the watcher ------------------------------------------------------------------------


def _report(csv: str, number: int) -> bytes:
    times = {"polls": number, "cpu_s": 0.01 * number, "children_cpu_s": 0.02 * number}
    poll = {"args": ["--query-gpu=" + ",".join(QUERY_FIELDS), "--format=csv,nounits"],
            "code": 0, "stdout": csv, "stderr": "", "timed_out": False, "overflow": False,
            "error": None, "stuck_pid": None, "number": number}  # fmt: skip
    report = {"version": 1, "pid": 4242, "start": 1, "seq": number, "mono": time.monotonic(),
              "period": 10.0, "evidence": "NVIDIA_VISIBLE_DEVICES=...", "uuids": [],
              "tool": "nvidia-smi", "tool_path": "/usr/bin/nvidia-smi", "tool_problem": None,
              "poll": poll, "cost": times, "done": None}  # fmt: skip
    return json.dumps(report, separators=(",", ":")).encode()


async def _monitor_costs(
    monitor: GpuMonitor, polls: int, before: Callable[[int], None]
) -> list[float]:
    classifier = GpuClassifier(live=True)
    costs = []
    for number in range(WARMUP + polls):
        before(number)
        started = time.process_time()
        snapshot = await monitor.poll_once()
        classifier.classify(snapshot, 0.0)
        if number >= WARMUP:
            costs.append((time.process_time() - started) * 1000)
        if snapshot.failures or not snapshot.readings:
            raise RuntimeError(f"{monitor.backend.name}: the poll fails: {snapshot}")
    return costs


def _summary(what: str, costs: list[float], gpus: int) -> WatcherCost:
    p95 = statistics.quantiles(costs, n=20)[-1]
    return WatcherCost(what, len(costs), gpus, statistics.median(costs),
                       statistics.fmean(costs), p95, max(costs))  # fmt: skip


async def watcher_costs(root: Path, cat: Path, polls: int, gpus: int) -> list[WatcherCost]:
    csv = (root / "query.csv").read_text("utf-8")
    run = root / "pw" / "run"
    run.mkdir(parents=True)
    locks = []
    for name in (LAUNCHER_LOCK, RELAY_LOCK):  # the launcher and its relay are there
        fd = os.open(run / name, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        locks.append(fd)
    clock = SystemClock()
    relay = RelayBackend(RelayFiles(run), period=10.0, timeout=5.0, named=True)
    relay_monitor = GpuMonitor(relay, interval=10.0, timeout=5.0, clock=clock, keep=OurGpus(None))

    def fresh(number: int) -> None:
        (run / REPORT).write_bytes(_report(csv, number + 1))

    relayed = await _monitor_costs(relay_monitor, polls, fresh)
    smi = SmiBackend(str(cat), 5.0)
    smi_monitor = GpuMonitor(smi, interval=10.0, timeout=5.0, clock=clock, keep=OurGpus(None))
    local = await _monitor_costs(smi_monitor, polls, lambda _: None)
    await smi.close()
    for fd in locks:
        os.close(fd)
    return [
        _summary("relay backend (report of the relay)", relayed, gpus),
        _summary("nvidia-smi backend (sh cat fake, baseline)", local, gpus),
    ]


# -- in the trainer's container --------------------------------------------------------------


def trainer_cost(root: Path, name: str, command: Path, polls: int, gpus: int) -> TrainerCost:
    home = root / f"pw-{len(list(root.glob('pw-*')))}"
    install(home)
    files = RelayFiles(home / "run")
    files.ask(request(0.1, 5.0, "health", QUERY_FIELDS))
    env = {**os.environ, "POD_WATCHER_NVIDIA_SMI": str(command), "POD_WATCHER_GPU_TOOL":
           "nvidia-smi", "FAKE_SMI_GPUS": str(gpus), "POD_WATCHER_ABSENT_WAIT": "0",
           "POD_WATCHER_TERMINATION_LOG": str(home / "term")}  # fmt: skip
    launcher = subprocess.Popen(
        [sys.executable, str(home / "launch"), "--", "sleep", "600"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        first = _report_after(files, 1)
        last = _report_after(files, 1 + polls)
    finally:
        launcher.terminate()
        launcher.wait(10)
    done = last["polls"] - first["polls"]
    return TrainerCost(
        name,
        done,
        (last["cpu_s"] - first["cpu_s"]) / done * 1000,
        (last["children_cpu_s"] - first["children_cpu_s"]) / done * 1000,
        first["cpu_s"] * 1000,
    )


def _report_after(files: RelayFiles, polls: int, limit: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        report = files.report()
        if report is not None and report.cost.get("polls", 0) >= polls:
            return report.cost
        time.sleep(0.02)
    raise RuntimeError(f"the relay did not reach {polls} polls")


def nvml_read_cost(gpus: int, polls: int) -> TrainerCost:
    nvml = FakeNvml(h100s(gpus))
    nvml.nvmlInit()
    reader = Nvml(nvml)
    started = time.process_time()
    for _ in range(polls):
        reader.read(5.0)
    cpu = (time.process_time() - started) / polls * 1000
    return TrainerCost("nvml (fake pynvml, in the relay process)", polls, cpu, 0.0, 0.0)


# -- report ----------------------------------------------------------------------------------


def table(watcher: list[WatcherCost], trainer: list[TrainerCost]) -> str:
    rows = [
        "| in the watcher, per poll | GPUs | CPU ms p50 | mean | p95 | max |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    rows += [f"| {c.what} | {c.gpus} | {c.cpu_ms_p50:.3f} | {c.cpu_ms_mean:.3f} "
             f"| {c.cpu_ms_p95:.3f} | {c.cpu_ms_max:.3f} |" for c in watcher]  # fmt: skip
    ratio = watcher[0].cpu_ms_mean / watcher[1].cpu_ms_mean
    goal = "met" if watcher[0].cpu_ms_p95 <= GOAL_MS else "MISSED"
    rows += ["", f"relay / baseline (mean): {ratio:.2f}; goal p95 <= {GOAL_MS:g} ms: {goal}"]
    rows += [
        "",
        "| in the trainer's container, per poll | polls | relay CPU ms | its children's CPU ms "
        "| relay start CPU ms |",
        "|---|---:|---:|---:|---:|",
    ]
    rows += [f"| {c.tool} | {c.polls} | {c.relay_cpu_ms_per_poll:.2f} "
             f"| {c.children_cpu_ms_per_poll:.2f} | {c.relay_start_cpu_ms:.1f} |"
             for c in trainer]  # fmt: skip
    return "\n".join(rows)


def run(polls: int, gpus: int) -> tuple[list[WatcherCost], list[TrainerCost]]:
    with tempfile.TemporaryDirectory(prefix="gpu-relay-") as tmp:
        root = Path(tmp)
        os.environ["FAKE_SMI_GPUS"] = str(gpus)
        cat = cat_fake(root, gpus)
        watcher = asyncio.run(watcher_costs(root, cat, polls, gpus))
        trainer = [
            trainer_cost(root, "nvidia-smi (python fake)", SCRIPT, min(polls, 30), gpus),
            trainer_cost(root, "nvidia-smi (sh cat)", cat, polls, gpus),
            nvml_read_cost(gpus, polls),
        ]
    return watcher, trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=100)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    watcher, trainer = run(args.polls, args.gpus)
    print(table(watcher, trainer))
    if args.json is not None:
        data = {"watcher": [asdict(c) for c in watcher], "trainer": [asdict(c) for c in trainer]}
        args.json.write_text(json.dumps(data, indent=2) + "\n", "utf-8")
    if watcher[0].cpu_ms_p95 > GOAL_MS:
        sys.exit(1)


if __name__ == "__main__":
    main()
