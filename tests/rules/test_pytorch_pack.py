"""The pytorch pack names DataLoader, shared-memory, native-crash and launcher failures."""

import pytest

from tests.rules.packcheck import assert_fires_first, assert_quiet
from watcher.rules.matcher import RuleMatcher
from watcher.rules.packs import load_pack
from watcher.types import FaultClass, Severity

MATCHER = RuleMatcher(load_pack("pytorch"))

FATAL = [
    (
        "SharedMemoryExhausted",
        "ERROR: Unexpected bus error encountered in worker. This might be caused by insufficient "
        "shared memory (shm).",
    ),
    (
        "SharedMemoryExhausted",
        "RuntimeError: DataLoader worker (pid 3391) is killed by signal: Bus error. It is possible "
        "that dataloader's workers are out of shared memory.",
    ),
    (
        "SharedMemoryExhausted",
        "RuntimeError: unable to write to file </torch_7712_1840523917_41>: No space left on "
        "device (28)",
    ),
    (
        "SharedMemoryExhausted",
        "/opt/job/entrypoint.sh: line 42:    57 Bus error               (core dumped) python -u "
        "train.py",
    ),
    (
        "DataLoaderWorkerKilled",
        "RuntimeError: DataLoader worker (pid 22841) is killed by signal: Segmentation fault.",
    ),
    (
        "DataLoaderWorkerKilled",
        "train:  33%|███▎      | 3310/10000 [21:44<43:59, 2.53it/s]\rRuntimeError: DataLoader "
        "worker (pid 1187) is killed by signal: Killed.",
    ),
    (
        "DataLoaderWorkerKilled",
        "[rank6]: RuntimeError: DataLoader worker (pid(s) 9012, 9013) exited unexpectedly",
    ),
    ("DataLoaderTimeout", "RuntimeError: DataLoader timed out after 600 seconds"),
    ("Segfault", "Fatal Python error: Segmentation fault"),
    (
        "Segfault",
        "run.sh: line 17:  4242 Segmentation fault      (core dumped) python train.py",
    ),
    ("Segfault", "*** SIGSEGV (@0x0) received by PID 311 (TID 0x7fd0a97fe700) from PID 0; stack"),
    ("Segfault", "  traceback : Signal 11 (SIGSEGV) received by PID 87"),
    (
        "Segfault",
        "torch.multiprocessing.spawn.ProcessExitedException: process 2 terminated with signal "
        "SIGSEGV",
    ),
    (
        "Segfault",
        "[gpu-node-07:2711 :0:2790] Caught signal 11 (Segmentation fault: address not mapped to "
        "object at address 0x18)",
    ),
    ("ProcessAborted", "Fatal Python error: Aborted"),
    ("ProcessAborted", "/entrypoint.sh: line 9:   188 Aborted                 (core dumped) x"),
    (
        "FatalPythonError",
        "Fatal Python error: PyThreadState_Get: the function must be called with the GIL held",
    ),
    ("TerminateCalled", "terminate called after throwing an instance of 'gloo::IoException'"),
    ("TerminateCalled", "terminate called after throwing an instance of 'std::runtime_error'"),
    (
        "TorchRendezvousTimeout",
        "[rank0]: torch.distributed.DistStoreError: Timed out after 901 seconds waiting for "
        "clients. 7/8 clients joined.",
    ),
    ("TorchRendezvousTimeout", "torch.distributed.elastic.rendezvous.api.RendezvousTimeoutError"),
    ("TorchChildFailed", "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:"),
    ("TorchChildFailed", "torch.multiprocessing.spawn.ProcessRaisedException:"),
    (
        "TorchChildFailed",
        "torchelastic.agent.server.api.WorkerGroupFailureException: [default] exceeded "
        "max_restarts=3",
    ),
    (
        "TorchChildFailed",
        "torch.multiprocessing.spawn.ProcessExitedException: process 0 terminated with exit code 1",
    ),
]

BENIGN = [
    "huggingface/tokenizers: The current process just got forked, after parallelism has already "
    "been used. Disabling parallelism to avoid deadlocks...",
    "W0806 14:00:01.772000 1 torch/distributed/run.py:793] Setting OMP_NUM_THREADS environment "
    "variable for each process to be 1 in default, to avoid your system being overloaded",
    "[W806 14:00:03.113012483 socket.cpp:697] [c10d] The client socket has failed to connect to "
    "[trainer-master-0.trainer]:29500 (errno: 22 - Invalid argument).",
    "2025-02-02 00:00:01,003 INFO  Segmentation fault handler installed",
    "I0202 00:00:01.044012    12 logging.cc:88] Installed failure signal handler for SIGSEGV",
    '{"watchdog": {"stop_on_error": true, "fatal_signals": ["SIGSEGV", "SIGBUS"]}}',
    "Fatal Python error: _enter_buffered_busy: could not acquire lock for "
    "<_io.BufferedWriter name='<stderr>'> at interpreter shutdown, possibly due to daemon threads",
    "torch.distributed.elastic.multiprocessing.api.SignalException: Process 1 got signal: 15",
    "W0924 18:30:00.002000 1 torch/distributed/elastic/multiprocessing/api.py:897] Sending "
    "process 55 closing signal SIGTERM",
    "NOTE: The SHMEM allocation limit is set to the default of 64MB.  This may be insufficient "
    "for PyTorch.",
    "============================== 0 failed, 12 passed in 3.41s ==============================",
]


@pytest.mark.parametrize(("reason", "line"), FATAL)
def test_fires_on_real_failure_lines(reason: str, line: str) -> None:
    assert_fires_first(MATCHER, reason, line)


@pytest.mark.parametrize("line", BENIGN)
def test_quiet_on_everyday_noise(line: str) -> None:
    assert_quiet(MATCHER, line)


def test_a_failed_worker_only_warns_until_torchrun_gives_up() -> None:
    line = (
        b"E0312 10:22:08.001000 140 torch/distributed/elastic/multiprocessing/api.py:869] failed "
        b"(exitcode: -6) local_rank: 0 (pid: 213) of binary: /usr/bin/python3\n"
    )
    hits = list(MATCHER.scan(line))
    assert [(hit.rule.reason, hit.rule.severity) for hit in hits] == [
        ("TorchWorkerFailed", Severity.WARNING)
    ]


def test_c10_terminate_leaves_the_name_to_the_what_line() -> None:
    """The line after it carries the CUDA or NCCL error, which the cuda and nccl packs name."""
    for exc in ("c10::Error", "c10::AcceleratorError", "c10::OutOfMemoryError"):
        line = f"terminate called after throwing an instance of '{exc}'\n".encode()
        assert list(MATCHER.scan(line)) == []


def test_fault_classes() -> None:
    by_reason = {rule.reason: rule for rule in load_pack("pytorch")}
    assert by_reason["SharedMemoryExhausted"].fault_class is FaultClass.INFRASTRUCTURE
    assert by_reason["DataLoaderTimeout"].fault_class is FaultClass.HANG
    assert by_reason["TorchRendezvousTimeout"].fault_class is FaultClass.TRANSIENT
    for reason in ("Segfault", "DataLoaderWorkerKilled", "TorchChildFailed", "TerminateCalled"):
        assert by_reason[reason].fault_class is FaultClass.APPLICATION


def test_a_worker_group_restart_is_context_that_withdraws_a_guess() -> None:
    """The agent restarting the group is an info finding that marks a recovery."""
    line = (
        b"W0207 03:14:40.610000 42 torch/distributed/elastic/agent/server/api.py:723] [default] "
        b"Worker group FAILED. 3/3 attempts left; will restart worker group\n"
    )
    (hit,) = MATCHER.scan(line)
    assert (hit.rule.reason, hit.rule.severity, hit.rule.recovery) == (
        "TorchWorkerGroupRestarted",
        Severity.INFO,
        True,
    )
