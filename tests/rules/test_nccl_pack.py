"""The nccl pack fires on real failure shapes and stays quiet on NCCL's everyday noise."""

import pytest

from tests.rules.packcheck import assert_quiet
from watcher.rules.matcher import RuleMatcher
from watcher.rules.packs import load_pack
from watcher.types import FaultClass, Severity

MATCHER = RuleMatcher(load_pack("nccl"))

FATAL = [
    (
        "NcclWatchdogTimeout",
        "[E ProcessGroupNCCL.cpp:828] [Rank 1] Watchdog caught collective operation timeout: "
        "WorkNCCL(SeqNum=5, OpType=ALLREDUCE, Timeout(ms)=1800000) ran for 1800439 milliseconds "
        "before timing out.",
    ),
    (
        "NcclWatchdogTimeout",
        "[rank3]:[E1126 10:12:13.123456789 ProcessGroupNCCL.cpp:632] [PG ID 0 PG GUID "
        "0(default_pg) Rank 3] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1, "
        "OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600079 "
        "milliseconds before timing out.",
    ),
    (
        "NcclWatchdogTimeout",
        "[rank0]:[E1126 10:12:13.1 ProcessGroupNCCL.cpp:1607] [PG 0 Rank 0] Timeout at NCCL work: "
        "1, last enqueued NCCL work: 1, last completed NCCL work: 0.",
    ),
    (
        "NcclWatchdogTimeout",
        "[rank5]:[E1126 10:12:41.5 ProcessGroupNCCL.cpp:1371] [PG ID 0 PG GUID 0(default_pg) "
        "Rank 5] Observed flight recorder dump signal from another rank via TCPStore.",
    ),
    (
        "NcclWatchdogTimeout",
        "[rank5]:[E1126 10:12:41.5 ProcessGroupNCCL.cpp:1432] [PG ID 0 PG GUID 0(default_pg) "
        "Rank 5] Received a dump signal due to a collective timeout from  rank 3 and we will try "
        "our best to dump the debug info.",
    ),
    (
        "NcclWatchdogTimeout",
        "[rank3]:[F725 02:47:41.268394894 ProcessGroupNCCL.cpp:1653] [PG ID 0 PG GUID "
        "0(default_pg) Rank 3] Terminating the process after attempting to dump debug info, due "
        "to collective timeout or exception.",
    ),
    (
        "NcclWatchdogStuck",
        "[rank2]:[F1229 20:37:13.091528310 ProcessGroupNCCL.cpp:1306] [PG ID 0 PG GUID "
        "0(default_pg) Rank 2] Terminating the process after attempting to dump debug info, due "
        "to ProcessGroupNCCL watchdog hang.",
    ),
    (
        "NcclWatchdogStuck",
        "[rank2]:[E1126 10:12:13.1 ProcessGroupNCCL.cpp:1398] [PG 0 Rank 2] ProcessGroupNCCL's "
        "watchdog got stuck for 480 seconds without making progress in monitoring enqueued "
        "collectives.",
    ),
    (
        "NcclWatchdogTerminated",
        "  what():  [PG 0 Rank 3] Process group watchdog thread terminated with exception: "
        "[Rank 3] Watchdog caught",
    ),
    (
        "NcclWatchdogTerminated",
        "[E ProcessGroupNCCL.cpp:915] [Rank 1] NCCL watchdog thread terminated with exception: "
        "NCCL error: unhandled system error, NCCL version 2.14.3",
    ),
    (
        "NcclCommunicatorAborted",
        "RuntimeError: NCCL communicator was aborted on rank 3.  Original reason for failure was: "
        "[Rank 3] Watchdog caught",
    ),
    ("NcclError", "ncclInternalError: Internal check failed."),
    (
        "NcclError",
        "ncclRemoteError: A call failed possibly due to a network error or a remote process "
        "exiting prematurely.",
    ),
    (
        "NcclError",
        "RuntimeError: NCCL error in: /opt/pytorch/torch/csrc/distributed/c10d/"
        "ProcessGroupNCCL.cpp:1269, internal error, NCCL version 2.14.3",
    ),
    ("NcclInvalidUsage", "ncclInvalidUsage: This usually reflects invalid usage of NCCL library."),
    (
        "NcclInvalidUsage",
        "node-b02:3301:3490 [0] NCCL WARN NET/IB : req 0/1 tag 7 peer 10.42.1.12<47293> "
        "collective mismatch error, local size 4194304 remote size 2097152",
    ),
    (
        "DistBackendError",
        "torch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/c10d/"
        "NCCLUtils.hpp:275, unhandled cuda error (run with NCCL_DEBUG=INFO for details), "
        "NCCL version 2.18.1",
    ),
    ("DistBackendError", "terminate called after throwing an instance of 'c10::DistBackendError'"),
    (
        "NcclRemotePeerClosed",
        "node-3:1234:5678 [0] NCCL WARN socketProgress: Connection closed by remote peer "
        "node-7<45678>",
    ),
    (
        "NcclIbCompletionError",
        "node-1:42:99 [3] NCCL WARN NET/IB : Got completion from peer 10.0.0.2<44944> with "
        "error 12, opcode 0, len 0, vendor err 129 (Recv)",
    ),
    (
        "NcclIbCompletionError",
        "node-1:42:99 [3] NCCL WARN NET/IB: Got completion from peer 10.0.0.2<44944> with "
        "status=12 opcode=0 len=0 vendor err 129 (Recv) localGid ::ffff:10.0.0.1",
    ),
]

BENIGN = [
    "node-1:42:42 [0] NCCL INFO NET/IB : Using [0]mlx5_0:1/IB ; OOB eth0:10.0.0.1<0>",
    "node-1:42:42 [0] NCCL INFO Channel 00/32 :    0   1   2   3   4   5   6   7",
    "node-1:42:42 [0] NCCL INFO Watchdog caught collective operation timeout (a quoted example)",
    "node-1:42:42 [0] NCCL INFO comm 0x55 rank 0 nranks 8 cudaDev 0 busId 18000 - Init COMPLETE",
    "node-1:42:42 [0] NCCL WARN NET/Plugin: Could not find: libnccl-net.so. Using internal",
    "node-1:42:42 [0] NCCL WARN Could not find real path of /sys/class/net/eth0/device",
    "[W ProcessGroupNCCL.cpp:1856] Warning: TORCH_NCCL_ASYNC_ERROR_HANDLING is deprecated",
    "[rank0]:[W1126 10:00:00.0 ProcessGroupNCCL.cpp:1168] WARNING: process group has NOT been "
    "destroyed before we destruct ProcessGroupNCCL.",
    "NCCL_BLOCKING_WAIT is deprecated, use TORCH_NCCL_BLOCKING_WAIT instead",
    "step 1200 | loss 2.31 | grad_norm 0.9 | errors 0 | nccl_timeout_s 600",
    "node-1:42:99 [3] NCCL WARN NET/IB : Got completion from peer 10.0.0.2<1> with error 0",
    "node-1:42:42 [0] NCCL INFO NET/IB : No device found.",
    "[rank0]:[I1126 09:30:00.0 ProcessGroupNCCL.cpp:1517] [PG ID 0 PG GUID 0(default_pg) Rank 0] "
    "Dump signal received through pipe, triggering FR dump.",
    "[rank2]:[W1126 12:40:03.0 ProcessGroupNCCL.cpp:1302] [PG ID 0 PG GUID 0(default_pg) Rank 2] "
    'Failed to check the "should dump" flag on TCPStore, (maybe TCPStore server has shut down '
    "too early), with error: failed to recv, got 0 bytes",
]


@pytest.mark.parametrize(("reason", "line"), FATAL)
def test_fires_on_real_failure_lines(reason: str, line: str) -> None:
    hits = list(MATCHER.scan(line.encode() + b"\n"))
    assert reason in [hit.rule.reason for hit in hits], line
    assert all(hit.rule.severity is Severity.FATAL for hit in hits)


@pytest.mark.parametrize("line", BENIGN)
def test_quiet_on_everyday_noise(line: str) -> None:
    assert_quiet(MATCHER, line)


def test_invalid_usage_is_an_application_fault_and_port_errors_only_warn() -> None:
    by_reason = {rule.reason: rule for rule in load_pack("nccl")}
    assert by_reason["NcclInvalidUsage"].fault_class is FaultClass.APPLICATION
    assert by_reason["NcclIbAsyncPortError"].severity is Severity.WARNING
