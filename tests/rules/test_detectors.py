"""The detectors (watcher/rules/detectors/) with every built-in pack, as the watcher runs:
an uncaught traceback seen as one unit across reads, launcher reports, Xid chains, and
generic lines that give way to specific ones."""

import pytest

from watcher.gpu.xids import xid_class
from watcher.logs.lines import Block
from watcher.rules.matcher import LineHit, RuleMatcher
from watcher.rules.packs import effective_rules
from watcher.types import FaultClass, Severity

RULES = effective_rules(["all"], [], [])


def scan(*reads: bytes, stream: str | None = "train.log") -> list[LineHit]:
    """Every hit of a fresh matcher over ``reads``, one block each, of one stream."""
    matcher = RuleMatcher(RULES)
    hits: list[LineHit] = []
    base = 0
    for data in reads:
        assert data.endswith(b"\n")
        hits += matcher.scan_block(Block(data, len(data), base), stream=stream)
        base += len(data)
    return hits


def fatal(hits: list[LineHit]) -> list[tuple[str, bytes]]:
    return [(h.rule.reason, h.line) for h in hits if h.rule.severity is Severity.FATAL]


UNCAUGHT = b"""\
step 12 loss 0.25
Traceback (most recent call last):
  File "/app/train.py", line 88, in <module>
    main()
  File "/app/train.py", line 80, in main
    batch = next(loader)
KeyError: 'input_ids'
"""


def test_an_uncaught_traceback_is_reported_on_its_exception_line() -> None:
    assert fatal(scan(UNCAUGHT)) == [("PythonUncaughtException", b"KeyError: 'input_ids'")]


@pytest.mark.parametrize("cut", [30, 60, 120, len(UNCAUGHT) - 25])
def test_a_traceback_split_between_two_reads_is_one_traceback(cut: int) -> None:
    cut = UNCAUGHT.index(b"\n", cut) + 1
    hits = fatal(scan(UNCAUGHT[:cut], UNCAUGHT[cut:]))
    assert hits == [("PythonUncaughtException", b"KeyError: 'input_ids'")]


THREAD = b"""\
Exception in thread Thread-3 (_pin_memory_loop):
Traceback (most recent call last):
  File "/usr/lib/python3.10/threading.py", line 1016, in _bootstrap_inner
    self.run()
  File "/usr/lib/python3.10/threading.py", line 953, in run
    self._target(*self._args, **self._kwargs)
ConnectionResetError: [Errno 104] Connection reset by peer
step 13 loss 0.24
"""


def test_a_traceback_that_starts_in_a_thread_is_not_the_program_ending() -> None:
    assert fatal(scan(THREAD)) == []


def test_what_the_detector_knows_of_a_stream_carries_to_the_next_read() -> None:
    cut = THREAD.index(b"ConnectionResetError")
    assert fatal(scan(THREAD[:cut], THREAD[cut:])) == []
    # Without the stream, the second read is an exception line of unknown origin.
    assert fatal(scan(THREAD[:cut], THREAD[cut:], stream=None)) == [
        ("PythonUncaughtException", b"ConnectionResetError: [Errno 104] Connection reset by peer")
    ]


@pytest.mark.parametrize(
    "text",
    [
        # logging.exception() in a retry loop: the traceback starts where it was caught
        b"ERROR:root:upload failed, retrying\nTraceback (most recent call last):\n"
        b'  File "/app/ckpt.py", line 40, in upload\n    put(blob)\n'
        b"TimeoutError: timed out\nINFO:root:upload done\n",
        # a destructor at shutdown
        b"Exception ignored in: <function Pool.__del__ at 0x7f>\nTraceback (most recent call "
        b'last):\n  File "/usr/lib/python3.10/multiprocessing/pool.py", line 268, in __del__\n'
        b"ValueError: I/O operation on closed file\n",
        b"Exception ignored in: <function _releaseLock at 0x7f>\nKeyError: 'x'\n",
    ],
    ids=["logged", "destructor", "ignored-orphan"],
)
def test_tracebacks_that_do_not_end_the_program_are_quiet(text: bytes) -> None:
    assert fatal(scan(text)) == []


def test_interleaved_ranks_each_get_their_traceback() -> None:
    text = b"".join(
        b"[rank%d]: %s\n" % (rank, line)
        for line in (
            b"Traceback (most recent call last):",
            b'  File "/app/train.py", line 9, in <module>',
            b"    main()",
            b"RuntimeError: Expected all tensors to be on the same device",
        )
        for rank in (0, 1)
    )
    hits = fatal(scan(text))
    assert [line for _, line in hits] == [
        b"[rank0]: RuntimeError: Expected all tensors to be on the same device",
        b"[rank1]: RuntimeError: Expected all tensors to be on the same device",
    ]
    assert {reason for reason, _ in hits} == {"PythonUncaughtException"}


def test_a_traceback_whose_header_was_not_read_starts_at_its_top_level_frame() -> None:
    # The watcher began reading after the header (or the header was lost); a bare
    # exception line like this one is no orphan the detector would report on its own.
    text = b'  File "/app/train.py", line 88, in <module>\n    main()\nRecursionError\n'
    assert fatal(scan(text)) == [("PythonUncaughtException", b"RecursionError")]
    assert fatal(scan(text.replace(b"<module>", b"worker"))) == []


def test_a_timestamp_that_ticks_on_every_line_is_the_same_prefix() -> None:
    text = b"".join(
        b"2024-05-01T10:00:0%d.%06dZ %s\n" % (n, n * 7919, line)
        for n, line in enumerate(
            [
                b"Traceback (most recent call last):",
                b'  File "/app/train.py", line 9, in <module>',
                b"    main()",
                b"AssertionError",
            ]
        )
    )
    assert fatal(scan(text)) == [("PythonUncaughtException", text.splitlines()[-1])]


def test_a_header_glued_to_a_progress_bar_still_opens_the_traceback() -> None:
    text = (
        b"Epoch 0:  35%|###5      | 350/1000 [01:10<02:10]Traceback (most recent call last):\n"
        b'  File "/app/train.py", line 5, in <module>\n    fit()\n'
        b'  File "/app/train.py", line 3, in fit\n    raise SystemError("bad")\n'
        b"SystemError: bad\n"
    )
    assert fatal(scan(text)) == [("PythonUncaughtException", b"SystemError: bad")]


def test_a_specific_rule_on_the_exception_line_names_it() -> None:
    text = UNCAUGHT.replace(
        b"KeyError: 'input_ids'",
        b"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB.",
    )
    assert [reason for reason, _ in fatal(scan(text))] == ["CudaOutOfMemory"]


def test_an_exception_line_followed_by_a_worker_group_restart_is_withdrawn() -> None:
    text = (
        b"[default0]:ValueError: bad batch shape\n"
        b"[W elastic] Worker group FAILED. 2/3 attempts left; will restart worker group\n"
    )
    assert fatal(scan(text)) == []
    assert fatal(scan(text.splitlines(keepends=True)[0])) == [
        ("PythonUncaughtException", b"[default0]:ValueError: bad batch shape")
    ]


REPORT = (
    b"E0301 12:00:00.000000 1 torch/distributed/elastic/multiprocessing/api.py:826] failed "
    b"(exitcode: 1) local_rank: 0 (pid: 4242) of binary: /usr/bin/python3\n"
)
GIVE_UP = (
    b"Traceback (most recent call last):\n"
    b'  File "/usr/local/bin/torchrun", line 8, in <module>\n'
    b"    sys.exit(main())\n"
)
RESTART = b"[W elastic] Worker group FAILED. 2/3 attempts left; will restart worker group\n"


def test_torchrun_giving_up_after_a_failed_worker_is_fatal_on_the_report() -> None:
    assert fatal(scan(REPORT + GIVE_UP)) == [("TorchrunGaveUp", REPORT.rstrip())]
    assert fatal(scan(REPORT, GIVE_UP)) == [("TorchrunGaveUp", REPORT.rstrip())]


def test_torchrun_restarting_its_workers_is_no_fatal_finding() -> None:
    hits = scan(REPORT + RESTART)
    assert fatal(hits) == []
    assert [h.rule.reason for h in hits] == ["TorchWorkerFailed", "TorchWorkerGroupRestarted"]


@pytest.mark.parametrize("xid", [79, 48, 149, 13, 43])
def test_a_chained_xid_is_judged_by_the_xid_that_caused_it(xid: int) -> None:
    line = b"NVRM: Xid (PCI:0000:dc:00): 45, pid=1818990, name=python3, Ch 00000001 caused by "
    line += b"previous Xid %d" % xid
    chained = [h for h in scan(line + b"\n") if h.rule.reason == "XidChain"]
    cause = xid_class(xid)
    if cause.severity is Severity.INFO:
        assert chained == []
        return
    assert [(h.rule.severity, h.rule.fault_class) for h in chained] == [
        (cause.severity, cause.fault_class)
    ]
    assert cause.meaning in chained[0].rule.description


def test_the_xid_catalog_decides_the_chain_not_a_table_of_its_own() -> None:
    hardware = [n for n in range(1, 173) if xid_class(n).fault_class is FaultClass.HARDWARE]
    for xid in hardware[:: max(1, len(hardware) // 8)]:
        line = b"Xid (PCI:0000:01:00): 45, Ch 00000002 caused by previous Xid %d\n" % xid
        chained = [h for h in scan(line) if h.rule.reason == "XidChain"]
        assert chained
        assert chained[0].rule.severity is xid_class(xid).severity


NCCL_WARN = b"node1:77:90 [0] NCCL WARN NET/IB : Got completion from peer with error 12\n"


def test_a_generic_failure_line_stands_alone() -> None:
    assert fatal(scan(b"node1:77:90 [0] NCCL WARN Connect to 10.0.0.2<4343> failed\n")) == [
        ("NcclWarnFailure", b"node1:77:90 [0] NCCL WARN Connect to 10.0.0.2<4343> failed")
    ]


def test_a_generic_failure_line_gives_way_to_a_specific_one_that_follows() -> None:
    text = (
        b"node1:77:90 [0] NCCL WARN Connect to 10.0.0.2<4343> failed : Connection refused\n"
        b"node1:77:90 [0] NCCL INFO transport/net.cc:210 -> 2\n"
        b"torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970, "
        b"unhandled system error, NCCL version 2.19.3\n"
    )
    reasons = [reason for reason, _ in fatal(scan(text))]
    assert reasons
    assert not {"NcclWarnFailure", "NcclErrorReturned"} & set(reasons)
    assert fatal(scan(text.splitlines(keepends=True)[1])) == [
        ("NcclErrorReturned", b"node1:77:90 [0] NCCL INFO transport/net.cc:210 -> 2")
    ]


def test_a_continued_piece_of_a_long_line_is_not_a_line_start() -> None:
    # A piece that continues a line cut at the length cap: its first "line" is the tail
    # of that line, which the detectors must not read as a line of its own.
    piece = b"KeyError: 'x'\nstep 1\n"
    matcher = RuleMatcher(RULES)
    hits = list(matcher.scan_block(Block(piece, len(piece), 1 << 20, seen=14), stream="s"))
    assert fatal(hits) == []
