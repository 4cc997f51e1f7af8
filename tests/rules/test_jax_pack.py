"""The jax pack fires on XLA runtime, coordination and backend failures, not on JAX's noise."""

import pytest

from watcher.rules.matcher import RuleMatcher
from watcher.rules.packs import load_pack
from watcher.types import FaultClass, Severity

RULES = {rule.reason: rule for rule in load_pack("jax")}
MATCHER = RuleMatcher(load_pack("jax"))


def reasons(line: str) -> list[str]:
    return [hit.rule.reason for hit in MATCHER.scan(line.encode() + b"\n")]


FATAL = [
    (
        "JaxCoordinationFailure",
        "F0926 17:26:32.075587  157988 client.h:77] Terminating process because the JAX "
        "distributed service detected fatal errors. This most likely indicates that another "
        "task died; see the other task logs for more details.",
    ),
    (
        "JaxCoordinationFailure",
        "Terminating process because the coordinator detected missing heartbeats. This most "
        "likely indicates that another task died; see the other task logs for more details.",
    ),
    (
        "JaxCoordinationFailure",
        "Terminating process because of missing heartbeat response from the coordinator.",
    ),
    (
        "JaxCoordinationFailure",
        "E0926 17:26:32.075402  157988 coordination_service_agent.cc:332] Polled an error from "
        "coordination service (this can be an error from this or another task).",
    ),
    (
        "JaxCoordinationFailure",
        "UNAVAILABLE: Task /job:jax_worker/replica:0/task:3 heartbeat timeout. This indicates "
        "that the remote task has failed, got preempted, or crashed unexpectedly.",
    ),
    (
        "JaxCoordinationFailure",
        "absl::Status: UNAVAILABLE: The following tasks are unhealthy (stopped sending "
        "heartbeats):",
    ),
    (
        "JaxCoordinationFailure",
        "ABORTED: Leader incarnation ID mismatch: the coordination  leader (usually slice 0 task "
        "0) has restarted.",
    ),
    (
        "JaxCoordinationFailure",
        "INTERNAL: Coordination service has stopped. RegisterTask() from task: "
        "/job:jax_worker/replica:0/task:1 failed.",
    ),
    (
        "JaxCoordinationFailure",
        "UNAVAILABLE: Failed to send RPC to coordination service. Either the leader task was "
        "preempted/died/restarted unexpectedly or this task is experiencing network issues.",
    ),
    (
        "JaxRuntimeError",
        "jaxlib.xla_extension.XlaRuntimeError: INTERNAL: Failed to execute XLA Runtime "
        "executable: run time error: custom call 'xla.gpu.all_reduce' failed",
    ),
    ("JaxRuntimeError", "jaxlib._jax.XlaRuntimeError: UNAVAILABLE: Socket closed"),
    ("JaxRuntimeError", "jax.errors.JaxRuntimeError: INTERNAL: Core halted unexpectedly"),
    ("JaxRuntimeError", "\x1b[1;91mXlaRuntimeError: \x1b[0mINTERNAL: custom call failed"),
    (
        "JaxRuntimeError",
        "E1126 08:23:02.551873  73355 pjrt_stream_executor_client.cc:3086] Execution of replica "
        "0 failed: INTERNAL: NCCL operation ncclGroupEnd() failed",
    ),
    (
        "JaxDeadlineExceeded",
        "jaxlib.xla_extension.XlaRuntimeError: DEADLINE_EXCEEDED: Barrier timed out. Id: x::0.",
    ),
    (
        "JaxOutOfMemory",
        "jaxlib.xla_extension.XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory while trying "
        "to allocate 19327352832 bytes.",
    ),
    (
        "JaxProgramError",
        "jaxlib.xla_extension.XlaRuntimeError: INVALID_ARGUMENT: Executable expected parameter "
        "3 of size 8388608 but got buffer with incompatible size 4194304",
    ),
    (
        "JaxBackendInitFailed",
        "RuntimeError: Unable to initialize backend 'tpu': ABORTED: The TPU is already in use "
        "by process with pid 4117. Not attempting to load libtpu.so in this process.",
    ),
    (
        "JaxBackendInitFailed",
        "RuntimeError: Unable to initialize backend 'tpu': UNKNOWN: TPU initialization failed: "
        "No ba16c7433 device found.",
    ),
    (
        "JaxBackendInitFailed",
        "Unable to initialize backend 'cuda': FAILED_PRECONDITION: No visible GPU devices. "
        "(set JAX_PLATFORMS='' to automatically choose an available backend)",
    ),
    (
        "JaxBackendInitFailed",
        "RuntimeError: Backend 'tpu' failed to initialize: UNKNOWN: TPU initialization failed. "
        "Available backends are ['cpu']",
    ),
]

BENIGN = [
    "INFO:2024-06-10 14:08:51,529:jax._src.xla_bridge:887: Unable to initialize backend "
    "'rocm': NOT_FOUND: Could not find registered platform with name: \"rocm\".",
    "I1126 10:00:00.123456 140234 xla_bridge.py:884] Unable to initialize backend 'tpu': "
    "UNKNOWN: TPU initialization failed: No ba16c7433 device found.",
    "INFO:jax._src.xla_bridge:Unable to initialize backend 'cuda': module 'jaxlib.xla_extension' "
    "has no attribute 'GpuAllocatorConfig'",
    "E external/xla/xla/service/slow_operation_alarm.cc:65] Constant folding an instruction is "
    "taking > 1s:",
    "INFO:jax._src.compilation_cache:Persistent compilation cache hit for 'jit_train_step'",
    "UserWarning: Error reading persistent compilation cache entry for 'jit_step': "
    "XlaRuntimeError: INTERNAL: Failed to deserialize executable",
    "save attempt 1 failed with XlaRuntimeError: DEADLINE_EXCEEDED: Barrier timed out; retrying "
    "in 30s (attempt 2 of 5)",
    "Retrying request after DEADLINE_EXCEEDED: Deadline Exceeded",
    "DeprecationWarning: jax.tree_map is deprecated: use jax.tree.map",
    "Polling for error from coordination service. This is a long-running RPC that will return "
    "only if an error is encountered or cancelled (e.g. due to shutdown).",
    "Cancelling error polling because the service or the agent is shutting down.",
    "Coordination agent has successfully shut down.",
    "Allocator (GPU_0_bfc) ran out of memory trying to allocate 2.00GiB with freed_by_count=0. "
    "The caller indicates that this is not a failure",
    "FAIL: FAILED_PRECONDITION: Task with incarnation id 3446767950926952685 is not connected",
    "config: {'heartbeat_timeout_seconds': 100, 'xla_runtime_errors': 0}",
]


@pytest.mark.parametrize(("reason", "line"), FATAL)
def test_fires_on_real_failure_lines(reason: str, line: str) -> None:
    assert reasons(line)[:1] == [reason], line
    assert RULES[reason].severity is Severity.FATAL


@pytest.mark.parametrize("line", BENIGN)
def test_quiet_on_jax_noise(line: str) -> None:
    assert reasons(line) == []


CPU_FALLBACK = [
    "WARNING:jax._src.xla_bridge:An NVIDIA GPU may be present on this machine, but a "
    "CUDA-enabled jaxlib is not installed. Falling back to cpu.",
    "W1126 11:05:30.341009 140410 xla_bridge.py:447] No GPU/TPU found, falling back to CPU. "
    "(Set TF_CPP_MIN_LOG_LEVEL=0 and rerun for more info.)",
    "A Google TPU may be present on this machine, but either a TPU-enabled jaxlib or libtpu "
    "is not installed. Falling back to cpu.",
    "CUDA backend failed to initialize: Found CUDA version 12010, but JAX was built against "
    "version 12020, which is newer.",
]


@pytest.mark.parametrize("line", CPU_FALLBACK)
def test_a_fall_back_to_the_cpu_only_warns(line: str) -> None:
    # CPU-only helpers and examples print it on purpose and run on (real logs showed two)
    assert reasons(line) == ["JaxFellBackToCpu"]
    assert RULES["JaxFellBackToCpu"].severity is Severity.WARNING


def test_slow_tpu_init_only_warns() -> None:
    line = (
        "UserWarning: TPU backend initialization is taking more than 60.0 seconds. Did you run "
        "your code on all TPU hosts?"
    )
    assert reasons(line) == ["JaxTpuInitSlow"]
    assert RULES["JaxTpuInitSlow"].severity is Severity.WARNING


def test_fault_classes() -> None:
    assert RULES["JaxFellBackToCpu"].fault_class is FaultClass.INFRASTRUCTURE
    assert RULES["JaxBackendInitFailed"].fault_class is FaultClass.INFRASTRUCTURE
    assert RULES["JaxOutOfMemory"].fault_class is FaultClass.APPLICATION
    assert RULES["JaxProgramError"].fault_class is FaultClass.APPLICATION
    for reason in ("JaxCoordinationFailure", "JaxRuntimeError", "JaxDeadlineExceeded"):
        assert RULES[reason].fault_class is FaultClass.TRANSIENT
    assert all(rule.action is None for rule in RULES.values())
