"""The system pack names storage, file-handle and host-memory failures and a stopping NaN loss."""

import pytest

from tests.rules.packcheck import assert_fires_first, assert_quiet
from watcher.rules.matcher import RuleMatcher
from watcher.rules.packs import load_pack
from watcher.types import FaultClass

MATCHER = RuleMatcher(load_pack("system"))

FATAL = [
    ("TooManyOpenFiles", "OSError: [Errno 24] Too many open files: '/data/shard-004121.tar'"),
    ("TooManyOpenFiles", "[rank2]: RuntimeError: received 0 items of ancdata"),
    ("TooManyOpenFiles", "accept4: too many open files; retrying in 1s"),
    ("StaleFileHandle", "OSError: [Errno 116] Stale file handle: '/mnt/nfs/runs/model.pt'"),
    ("StorageIOError", "OSError: [Errno 5] Input/output error: '/gcs/corpus/part-00871.parquet'"),
    ("StorageIOError", "cp: error reading '/data/shard-7.bin': Input/output error"),
    ("NoSpaceLeft", "OSError: [Errno 28] No space left on device: '/ckpt/model_states.pt'"),
    (
        "NoSpaceLeft",
        "SafetensorError: Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
        'message: "No space left on device" })',
    ),
    ("NoSpaceLeft", "OSError: [Errno 122] Disk quota exceeded"),
    ("ReadOnlyFileSystem", "OSError: [Errno 30] Read-only file system: '/checkpoints/step_12000'"),
    ("HostOutOfMemory", "MemoryError"),
    (
        "HostOutOfMemory",
        "tokenize:  88%|████████▊ | 880/1000 [12:01<01:38, 1.22it/s]\rMemoryError",
    ),
    (
        "HostOutOfMemory",
        "numpy.core._exceptions._ArrayMemoryError: Unable to allocate 37.3 GiB for an array with "
        "shape (4890000, 2048) and data type float32",
    ),
    ("HostOutOfMemory", "terminate called after throwing an instance of 'std::bad_alloc'"),
    ("HostOutOfMemory", "OSError: [Errno 12] Cannot allocate memory"),
    (
        "HostOutOfMemory",
        "Memory cgroup out of memory: Killed process 4121 (python) total-vm:94123456kB",
    ),
    ("HostOutOfMemory", "Killed"),
    ("HostOutOfMemory", "/app/run.sh: line 7:   311 Killed                  python pack.py"),
    ("HostOutOfMemory", "\x1b[1;35mMemoryError\x1b[0m"),
    ("HeapCorruption", "double free or corruption (!prev)"),
    ("HeapCorruption", "free(): invalid pointer"),
    ("HeapCorruption", "malloc(): unaligned tcache chunk detected"),
    ("HeapCorruption", "*** stack smashing detected ***: terminated"),
    (
        "LossScaleAtMinimum",
        "Exception: Current loss scale already at minimum - cannot decrease scale anymore. "
        "Exiting run.",
    ),
    (
        "LossScaleAtMinimum",
        "FloatingPointError: Minimum loss scale reached (0.0001). Your loss is probably exploding.",
    ),
    ("NonFiniteLoss", "2025-04-18 13:01:09,744 - trainer - WARNING - Loss is NaN, stopping"),
    ("NonFiniteLoss", "ValueError: Training loss is nan at step 1200"),
    ("NonFiniteLoss", "FloatingPointError: loss is nan or inf"),
    (
        "NonFiniteLoss",
        "\x1b[1;35mFloatingPointError\x1b[0m: \x1b[35mtraining loss is inf at step 3001\x1b[0m",
    ),
    (
        "NonFiniteLoss",
        "[rank17]: AssertionError: Rank 17: found NaN in local grad norm in backward pass before "
        "data-parallel communication collective. Device: 1, node: gpu-node-12",
    ),
    (
        "NonFiniteLoss",
        "RuntimeError: The total norm of order 2.0 for gradients from `parameters` is non-finite, "
        "so it cannot be clipped.",
    ),
    (
        "NonFiniteLoss",
        "RuntimeError: Function 'LogSoftmaxBackward0' returned nan values in its 0th output.",
    ),
    (
        "NonFiniteLoss",
        "Monitored metric val_loss = nan is not finite. Previous best value was 0.412. Signaling "
        "Trainer to stop.",
    ),
    ("NonFiniteLoss", "Batch 812: Invalid loss, terminating training"),
    (
        "NonFiniteLoss",
        "ValueError: Detected nan and/or inf values in `decoder.proj.weight`. Check your forward "
        "pass for numerically unstable operations.",
    ),
]

BENIGN = [
    "Gradient overflow.  Skipping step, loss scaler 0 reducing loss scale to 32768.0",
    "[deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: 65536, reducing to 32768",
    "[deepspeed] fp16 dynamic loss scale overflow! Skipping step. Attempted loss scale: 32768, "
    "reducing to 16384",
    "{'eval_loss': nan, 'eval_runtime': 61.2, 'eval_samples_per_second': 81.7, 'epoch': 0.25}",
    "{'loss': nan, 'grad_norm': nan, 'learning_rate': 4.7e-05, 'epoch': 0.26}",
    "step 1300: nan_count=0 inf_count=0 skipped_batches=0",
    "UserWarning: Anomaly Detection has been enabled. This mode will increase the runtime and "
    "should only be enabled for debugging.",
    "UserWarning: Error detected in LogSoftmaxBackward0. Traceback of forward call that caused "
    "the error:",
    "  check_for_nan_in_loss_and_grad .................. True",
    "nan_guard: skip_nan_loss=True terminate_on_nan=False stop_on_nan_loss=false",
    "step 4411: skipped batch (non-finite loss), consecutive=1/5",
    "entrypoint: OOM killer score adjusted to -997 for pid 1 (oom_score_adj)",
    "    except MemoryError:",
    "UserWarning: could not create /root/.triton/cache: [Errno 30] Read-only file system: "
    "'/root/.triton'; falling back to /tmp",
    "Retrying (Retry(total=2)) after connection broken by 'NewConnectionError(': Failed to "
    "establish a new connection: [Errno 111] Connection refused')': /api/v1/metrics",
    "storage /checkpoints: 91% used, 120 GiB free; enospc_retries=0",
    "eval: samples=5000 eval_errors: 0 error_rate=0.01 failed=0",
    "tail: cannot watch '/logs/train.log': No space left on device",
    "Error: ENOSPC: System limit for number of file watchers reached, watch '/workspace/src'",
    "[mem] rss=41.2GiB peak_rss=44.0GiB host_oom_events=0 MemoryErrors=0",
    "worker 3: Killed 2 stale prefetch threads",
]


@pytest.mark.parametrize(("reason", "line"), FATAL)
def test_fires_on_real_failure_lines(reason: str, line: str) -> None:
    assert_fires_first(MATCHER, reason, line)


@pytest.mark.parametrize("line", BENIGN)
def test_quiet_on_skipped_steps_metrics_and_settings(line: str) -> None:
    assert_quiet(MATCHER, line)


def test_fault_classes() -> None:
    by_reason = {rule.reason: rule for rule in load_pack("system")}
    for reason in ("TooManyOpenFiles", "StaleFileHandle", "StorageIOError", "NoSpaceLeft"):
        assert by_reason[reason].fault_class is FaultClass.INFRASTRUCTURE
    for reason in ("NonFiniteLoss", "LossScaleAtMinimum", "HostOutOfMemory", "HeapCorruption"):
        assert by_reason[reason].fault_class is FaultClass.APPLICATION
