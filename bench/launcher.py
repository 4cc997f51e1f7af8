"""The launcher and the fate of the Pod: `python -m bench.launcher [--smoke] [--reps N]`.

1. The race the launcher exists for: the trainer prints a fatal line and dies first
   (exit 1, SIGKILL, SIGSEGV) in a Pod run by the kubelet model (PLEG relist 1 s, phase
   before restart rules). Counted: restarts in place, out of the repetitions.
2. From the trainer's death (the launcher's exit record) to the watcher's exit 88, with
   the real processes and no kubelet: medians and p90 of the repetitions.
3. The launcher's CPU at 1 MB/s of output in 100 writes/s against `tee -a`, the recipe it
   replaces, measured in the same run on the same writer (from /proc, steady state).
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.workload import NCCL_TIMEOUT
from tests.kubelet.pods import TrainerPod, free_port, trainer_script
from watcher.workload.install import install

DEATHS = {
    "exit 1": "sys.exit(1)",
    "SIGKILL": "os.kill(os.getpid(), signal.SIGKILL)",
    "SIGSEGV": "import ctypes; ctypes.string_at(0)",
}


async def one_race(death: str, root: Path) -> bool:
    """One Pod: True if the trainer's death ended in an in-place restart."""
    pod = TrainerPod(root, free_port())
    fatal = f"print({NCCL_TIMEOUT!r}, flush=True)\n"
    trainer = trainer_script(f"if START == 1:\n    {fatal}    {DEATHS[death]}\nsys.exit(0)")
    model = pod.model(pod.spec(trainer), relist=1.0)
    model.start()
    try:
        phase = await model.wait_phase("Succeeded", "Failed", within=60)
        return phase == "Succeeded" and len(model.cycles) == 1
    finally:
        await model.close()


async def races(reps: int, parallel: int) -> dict[str, int]:
    won = dict.fromkeys(DEATHS, 0)
    jobs = [(death, n) for n in range(reps) for death in DEATHS]
    with tempfile.TemporaryDirectory(prefix="pwb") as base:
        for start in range(0, len(jobs), parallel):
            batch = jobs[start : start + parallel]
            dirs = [Path(base) / f"{death.replace(' ', '')}-{n}" for death, n in batch]
            for directory in dirs:
                directory.mkdir()
            results = await asyncio.gather(
                *(one_race(death, d) for (death, _), d in zip(batch, dirs, strict=True))
            )
            for (death, _), ok in zip(batch, results, strict=True):
                won[death] += ok
    return won


def exit_to_exit(root: Path) -> float:
    """Seconds from the trainer's death to the watcher's exit, no kubelet in between."""
    launcher, state = root / "pw", root / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
    env |= {"WATCHER_LAUNCHER_DIR": str(launcher), "WATCHER_STATE_DIR": str(state),
            "WATCHER_TERMINATION_LOG": "", "WATCHER_HTTP_PORT": "0", "WATCHER_GPU": "off",
            "WATCHER_HTTP_HOST": "127.0.0.1", "WATCHER_LOG_FORMAT": "json"}  # fmt: skip
    watcher = subprocess.Popen(
        [sys.executable, "-m", "watcher", "run"], env=env, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert watcher.stdout is not None
    for line in watcher.stdout:
        if '"msg": "ready"' in line:
            break
    code = f"import sys; print({NCCL_TIMEOUT!r}, flush=True); sys.exit(1)"
    trainer = subprocess.Popen(
        [sys.executable, str(launcher / "launch"), "--", sys.executable, "-c", code],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert watcher.wait(30) == 88
    exited = time.time()
    trainer.kill()
    trainer.wait(10)
    records = (launcher / "run" / "launcher.jsonl").read_text().splitlines()
    died = next(json.loads(r)["time"] for r in records if '"event":"exit"' in r)
    return exited - float(died)


WRITER = """
import sys, time
line = b"step %06d | loss 2.3417 | lr 3.0e-04 | tokens/s 151234 | NCCL INFO ok " + b"x" * 9
line += b"\\n"
chunk, end, n = 10_000, time.monotonic() + SECONDS, 0
out = sys.stdout.buffer
while time.monotonic() < end:
    block = b"".join(line % (n + i) for i in range(chunk // len(line % 0)))
    out.write(block); out.flush(); n += 100; time.sleep(0.01)
"""


def cpu_seconds(pid: int) -> float:
    """Time on a CPU, to the nanosecond (schedstat), where /proc/PID/stat counts ticks."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


def steady_cpu(proc: subprocess.Popen[bytes], pid: int, seconds: float) -> float:
    """CPU share of ``pid`` between 2 s after the start and 1 s before the writer stops."""
    time.sleep(2.0)
    first, began = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds - 3.0)
    used, took = cpu_seconds(pid) - first, time.monotonic() - began
    proc.wait(30)
    return used / took


def copy_cost(root: Path, seconds: float) -> tuple[float, float, float]:
    """The launcher's, tee's and the writer's own CPU (shares of a core), 1 MB/s."""
    writer = [sys.executable, "-c", f"SECONDS = {seconds}\n{WRITER}"]
    alone = subprocess.Popen(writer, stdout=subprocess.DEVNULL)
    itself = steady_cpu(alone, alone.pid, seconds)
    install(root / "pw")
    launcher = subprocess.Popen(
        [sys.executable, str(root / "pw" / "launch"), "--", *writer],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    ours = steady_cpu(launcher, launcher.pid, seconds)
    source = subprocess.Popen(writer, stdout=subprocess.PIPE)
    tee = subprocess.Popen(["tee", "-a", str(root / "tee.log")], stdin=source.stdout,
                           stdout=subprocess.DEVNULL)  # fmt: skip
    assert source.stdout is not None
    source.stdout.close()
    theirs = steady_cpu(tee, tee.pid, seconds)
    source.wait(30)
    return ours, theirs, itself


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a few repetitions: it works")
    parser.add_argument("--reps", type=int, default=50)
    args = parser.parse_args()
    reps, latency_reps, seconds = (1, 3, 5.0) if args.smoke else (args.reps, 20, 12.0)
    won = asyncio.run(races(reps, parallel=3))
    for death, count in won.items():
        print(f"trainer dies first ({death}): restarted in place {count} of {reps}")
    with tempfile.TemporaryDirectory(prefix="pwb") as base:
        delays = []
        for n in range(latency_reps):
            (Path(base) / str(n)).mkdir()
            delays.append(exit_to_exit(Path(base) / str(n)) * 1000)
        costs = [copy_cost(Path(base), seconds) for _ in range(1 if args.smoke else 3)]
    ours, theirs, itself = (statistics.median(c[i] for c in costs) for i in range(3))
    delays.sort()
    p90 = delays[min(len(delays) - 1, int(0.9 * len(delays)))]
    median = statistics.median(delays)
    print(f"trainer's exit -> watcher's exit 88: median {median:.1f} ms, p90 {p90:.1f} ms "
          f"(n={len(delays)}; target <= 100 ms median)")  # fmt: skip
    ratio = ours / theirs if theirs > 0 else float("inf")
    whole = (itself + ours) / (itself + theirs)
    print(f"copying 1 MB/s in 100 writes/s (medians of {len(costs)}): launcher "
          f"{ours * 100:.3f} % of a core, tee -a {theirs * 100:.3f} %: {ratio:.2f}x "
          f"(target <= 1.5x); with the writer ({itself * 100:.3f} %): {whole:.2f}x")  # fmt: skip
    if args.smoke:
        return
    misses = [d for d, c in won.items() if c != reps]
    if misses or median > 100 or ratio > 1.5:
        print(f"targets missed: {misses or ''} {'latency' if median > 100 else ''} "
              f"{'copy cost' if ratio > 1.5 else ''}".strip())  # fmt: skip


if __name__ == "__main__":
    main()
