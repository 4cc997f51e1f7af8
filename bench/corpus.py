"""Seeded, realistic training-log corpora for the scan benchmark.

The mix is what real training logs hold: mostly step lines of 110-170 B, tqdm bars
with Unicode block characters, INFO lines, benign `NCCL INFO` lines that mention NET/IB
and errors, warnings containing "error"/"errno", JSON metric lines with `eval_errors`,
and a handful of planted fatal lines. Benign lines are near misses for the rules in
bench/rules.txt but never match them, so the matching-line count equals the number of
planted fatal lines.
"""

import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

FATAL_LINES: Final = (
    "[rank0]:[E1126 10:00:00.000000 1 ProcessGroupNCCL.cpp:632] [Rank 0] Watchdog caught "
    "collective operation timeout: WorkNCCL(SeqNum=1, OpType=ALLREDUCE) ran for 600000 "
    "milliseconds before timing out.",
    "RuntimeError: CUDA error: an illegal memory access was encountered",
    "[ 8123.456789] NVRM: Xid (PCI:0000:4f:00): 79, pid=48213, name=python, GPU has fallen off "
    "the bus.",
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 3 has a total "
    "capacity of 79.11 GiB of which 1.23 GiB is free.",
    "torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ",
    "node-7:48213:48377 [3] NCCL WARN NET/IB : Got completion from peer 10.0.3.17<40217> with "
    "error 12, opcode 0, len 0, vendor err 129 (Recv)",
    "RuntimeError: CUDA error: uncorrectable ECC error encountered",
    "terminate called after throwing an instance of 'c10::DistBackendError'",
    "Fatal Python error: Segmentation fault",
    "[rank3]:[E1126 10:41:07.113409 48213 ProcessGroupNCCL.cpp:1316] [PG 0 Rank 3] NCCL "
    "watchdog thread terminated with exception: NCCL error: remote process exited",
    "RuntimeError: CUBLAS_STATUS_EXECUTION_FAILED when calling `cublasGemmEx( handle, opa, opb, "
    "m, n, k, &falpha, a, CUDA_R_16BF, lda, b, CUDA_R_16BF, ldb, &fbeta, c, CUDA_R_16BF, ldc)`",
    "[ 9911.000012] Out of memory: Killed process 48213 (python3.11) total-vm:912345678kB, "
    "anon-rss:81234567kB",
    "OSError: [Errno 28] No space left on device: '/ckpt/step_120000/model-00003.safetensors'",
    "torch.distributed.DistStoreError: Timed out after 901 seconds waiting for clients. 7/8 "
    "clients joined.",
    "Killed",
)
"""One line each; every one matches at least one rule of bench/rules.txt."""

PLANTED_FATAL: Final = 20
BLOCKS: Final = " ▏▎▍▌▋▊▉█"


def _ts(rng: random.Random) -> str:
    return (
        f"2026-11-26 {rng.randrange(24):02d}:{rng.randrange(60):02d}:"
        f"{rng.randrange(60):02d},{rng.randrange(1000):03d}"
    )


def step_line(rng: random.Random) -> str:
    step = rng.randrange(1, 500_000)
    head = rng.choice(
        (f"[{_ts(rng)}][train][INFO] -", f"{_ts(rng)} | rank {rng.randrange(64)} |", "[train]")
    )
    fields = [
        f"step {step}/500000",
        f"loss {rng.uniform(1.5, 4.0):.4f}",
        f"lr {rng.uniform(1e-5, 3e-4):.3e}",
        f"grad_norm {rng.uniform(0.1, 3.0):.3f}",
        f"tok/s {rng.randrange(80_000, 400_000)}",
    ]
    extras = [
        f"epoch {step // 40_000}",
        f"mfu {rng.uniform(30, 55):.1f}%",
        f"mem {rng.uniform(40, 79):.1f}GiB",
        f"data_time {rng.uniform(0.001, 0.05):.4f}s",
        f"step_time {rng.uniform(0.3, 1.5):.3f}s",
    ]
    rng.shuffle(extras)
    line = f"{head} " + " | ".join(fields)
    target = rng.randrange(110, 171)
    for extra in extras:
        if len(line) + 3 + len(extra) > 170 or len(line) >= target:
            break
        line += " | " + extra
    return line if len(line) >= 110 else line + " | " + "ok".ljust(110 - len(line) - 3, ".")


def tqdm_line(rng: random.Random) -> str:
    total = rng.choice((500, 1000, 5000, 20_000))

    def bar(done: int) -> str:
        frac = done / total
        full, part = divmod(int(frac * 25 * 8), 8)
        cells = "█" * full + (BLOCKS[part] if full < 25 else "")
        rate = rng.uniform(1.5, 9.0)
        return (
            f"Training: {frac * 100:3.0f}%|{cells.ljust(25)}| {done}/{total} "
            f"[{rng.randrange(60):02d}:{rng.randrange(60):02d}<{rng.randrange(60):02d}:"
            f"{rng.randrange(60):02d}, {rate:.2f}it/s, loss={rng.uniform(1.5, 4):.3f}]"
        )

    if rng.random() < 0.3:  # a bar redrawn with carriage returns, as tqdm writes to a file
        done = sorted(rng.randrange(total + 1) for _ in range(rng.randrange(2, 5)))
        return "\r".join(bar(d) for d in done)
    return bar(rng.randrange(total + 1))


def info_line(rng: random.Random) -> str:
    return rng.choice(
        (
            f"{_ts(rng)} - INFO - checkpoint.py:212 - Saved checkpoint to "
            f"/ckpt/step_{rng.randrange(500_000)} in {rng.uniform(1, 9):.2f}s",
            "INFO:torch.distributed.elastic.agent.server.api:[default] Starting worker group",
            f"{_ts(rng)} - INFO - dataloader.py:88 - shard {rng.randrange(4096)} opened, "
            f"{rng.randrange(10**6)} samples",
            f"[{_ts(rng)}][eval][INFO] - running evaluation on {rng.randrange(100, 5000)} batches",
            f"INFO:root:throughput {rng.uniform(100, 900):.1f} samples/s, no errors so far",
        )
    )


def nccl_info_line(rng: random.Random) -> str:
    host, pid, gpu = f"node-{rng.randrange(64)}", rng.randrange(10**5), rng.randrange(8)
    prefix = f"{host}:{pid}:{pid + rng.randrange(1, 200)} [{gpu}] NCCL INFO "
    peer = f"10.0.{rng.randrange(256)}.{rng.randrange(256)}<{rng.randrange(1024, 65536)}>"
    return prefix + rng.choice(
        (
            f"NET/IB : Using [0]mlx5_{gpu}:1/IB [1]mlx5_{gpu + 1}:1/IB ; OOB eth0:{peer}",
            f"Channel {rng.randrange(32):02d}/0 : {gpu}[{gpu}] -> {(gpu + 1) % 8}[{(gpu + 1) % 8}]"
            " via P2P/IPC/read",
            f"NET/IB : GPU Direct RDMA Enabled for HCA {gpu} 'mlx5_{gpu}'",
            f"NET/IB : Got completion from peer {peer} with status 0, errors 0 (ok)",
            f"NET/IB: IbvAsyncThread: dev mlx5_{gpu} port 1 error count 0, no async event",
            "Connected all rings; ncclSuccess, no errors reported by ibv_poll_cq",
            f"comm 0x{rng.randrange(16**12):012x} rank {gpu} nranks 64 cudaDev {gpu} busId "
            f"{rng.randrange(16**5):05x}000 - Init COMPLETE",
            "NCCL_IB_TIMEOUT set by environment to 22; NET/IB retry on error enabled",
        )
    )


def warning_line(rng: random.Random) -> str:
    return rng.choice(
        (
            "/opt/conda/lib/python3.11/site-packages/torch/utils/data/dataloader.py:557: "
            "UserWarning: This DataLoader will create 16 worker processes in total.",
            f"[W socket.cpp:464] [c10d] The server socket has failed to bind to [::]:29500 "
            f"(errno: 98 - Address already in use). attempt {rng.randrange(5)}",
            f"WARNING:root:retrying upload after error: Read timed out (errno 110), try "
            f"{rng.randrange(1, 6)}",
            f"{_ts(rng)} - WARNING - metrics.py:41 - error rate {rng.uniform(0, 0.01):.5f} "
            "above threshold in eval shard",
            "UserWarning: error_if_nonfinite is deprecated; gradient clipping ignores it",
        )
    )


def metrics_line(rng: random.Random) -> str:
    return (
        f'{{"step": {rng.randrange(500_000)}, "eval_loss": {rng.uniform(1.5, 3.5):.4f}, '
        f'"eval_errors": {rng.randrange(3)}, "eval_accuracy": {rng.uniform(0.4, 0.8):.4f}, '
        f'"epoch": {rng.uniform(0, 12):.2f}, "ts": "{_ts(rng)}"}}'
    )


MIX: Final[tuple[tuple[float, Callable[[random.Random], str]], ...]] = (
    (0.84, step_line),
    (0.05, tqdm_line),
    (0.03, info_line),
    (0.02, nccl_info_line),
    (0.02, warning_line),
    (0.04, metrics_line),
)


def benign_lines(rng: random.Random) -> Iterator[str]:
    makers = [maker for _, maker in MIX]
    weights = [weight for weight, _ in MIX]
    while True:
        for maker in rng.choices(makers, weights, k=4096):
            yield maker(rng)


def _write(path: Path, size: int, lines: Iterator[str], fatal: list[bytes]) -> int:
    """Write about ``size`` bytes of ``lines`` with ``fatal`` lines spread through them."""
    rng = random.Random(size)
    marks = sorted(rng.randrange(size) for _ in fatal)
    written, batch = 0, []
    with path.open("wb") as out:
        for text in lines:
            line = text.encode("utf-8") + b"\n"
            while marks and written >= marks[0]:
                marks.pop(0)
                line = fatal.pop() + b"\n" + line
            batch.append(line)
            written += len(line)
            if len(batch) >= 8192 or written >= size:
                out.write(b"".join(batch))
                batch = []
            if written >= size:
                break
        out.write(b"".join(batch + [f + b"\n" for f in fatal]))
    return path.stat().st_size


def training_corpus(path: Path, size: int, seed: int = 20261126) -> int:
    """The main corpus; returns its size. Plants `PLANTED_FATAL` fatal lines."""
    rng = random.Random(seed)
    fatal = [FATAL_LINES[i % len(FATAL_LINES)].encode() for i in range(PLANTED_FATAL)]
    rng.shuffle(fatal)
    return _write(path, size, benign_lines(rng), fatal)


def nccl_info_corpus(path: Path, size: int, seed: int = 8) -> int:
    """The adversarial corpus: every line an `NCCL INFO` line."""
    rng = random.Random(seed)
    return _write(path, size, iter(lambda: nccl_info_line(rng), None), [])


def cri_prefix(when: float) -> bytes:
    """The kubelet's CRI log framing for a stdout line written at ``when`` (epoch s):
    `2026-12-03T12:00:00.123456789Z stdout F `. node-problem-detector needs the stamp."""
    whole = int(when)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{stamp}.{int((when - whole) * 1e9):09d}Z stdout F ".encode()


def cri_framed(source: Path, target: Path, when: float) -> int:
    """``source`` with every line in CRI framing, stamped ``when``; returns the size."""
    prefix = cri_prefix(when)
    with source.open("rb") as lines, target.open("wb") as out:
        while batch := lines.readlines(1 << 22):
            out.write(b"".join(prefix + line for line in batch))
    return target.stat().st_size
