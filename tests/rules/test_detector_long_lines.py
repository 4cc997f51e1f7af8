"""Detectors on adversarial 16 MiB lines: each line is looked at a bounded number of
bytes at a time, in Python at most `LINE_LIMIT` bytes of it, and the lines after it are
judged as usual.

Replayed with `watcher.replay.Replayer` and the default settings (1 MiB pieces), the
path the live watcher reads with. Cost is counted, not timed: the bytes each detector's
Python code is handed (the line iterator, the whole-line copies for evidence)."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from watcher.config.settings import DEFAULT_ACTIONS, WatcherSettings
from watcher.replay import Replayer, ReplayHit
from watcher.rules import detectors
from watcher.rules.detectors import fallback, python_traceback, torchrun_exit, xid_chain
from watcher.rules.packs import effective_rules

MIB = 1 << 20
SIZE = 16 * MIB
DEFAULTS = WatcherSettings.model_fields
MAX_LINE = DEFAULTS["max_line_bytes"].default
CHUNK = DEFAULTS["read_chunk_bytes"].default
BLOCK = MAX_LINE + CHUNK
"""The most one read hands the matcher: a piece of a long line and the read after it."""
TAIL = (
    b"\nTraceback (most recent call last):\n"
    b'  File "/app/train.py", line 3, in <module>\n'
    b"KeyError: 'after the long line'\n"
)
TRIGGERS = {
    "header": b"Traceback (most recent call last):",
    "top-frame": b'  File "/app/train.py", line 3, in <module>',
    "exception": b"ValueError: x ",
    "xid-chain": b"Ch 00000001 caused by previous Xid 79 ",
    "nccl-warn": b"NCCL WARN Connect to 10.0.0.2<4343> failed ",
    "torchrun": b"failed (exitcode: 1) local_rank: 0 (pid: 1) of binary: python ",
    "frames": b"frame #3: c10d::ProcessGroupNCCL::ncclCommWatchdog() + 0x2 (0x7f in x.so)",
}


class Cost:
    """Bytes handed to the detectors' Python code, per call and in all."""

    def __init__(self) -> None:
        self.calls = 0
        self.total = 0
        self.largest = 0

    def add(self, size: int) -> None:
        self.calls += 1
        self.total += size
        self.largest = max(self.largest, size)


@pytest.fixture
def cost(monkeypatch: pytest.MonkeyPatch) -> Cost:
    counted = Cost()
    lines, full_line = detectors.lines, detectors.full_line

    def counted_lines(data: bytes, pos: int, end: int) -> Iterator[tuple[int, bytes]]:
        for start, line in lines(data, pos, end):
            counted.add(len(line))
            yield start, line

    def counted_full_line(data: bytes, start: int, end: int) -> bytes:
        line = full_line(data, start, end)
        counted.add(len(line))
        return line

    modules: list[Any] = [python_traceback, torchrun_exit, fallback, xid_chain]
    for module in modules:
        for name, wrapper in (("lines", counted_lines), ("full_line", counted_full_line)):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, wrapper)
    return counted


def replay(path: Path) -> list[ReplayHit]:
    replayer = Replayer(
        tuple(effective_rules(["all"], [], [])),
        DEFAULT_ACTIONS,
        max_line=MAX_LINE,
        chunk=CHUNK,
    )
    return list(replayer.replay(str(path)))


def endless(trigger: bytes) -> bytes:
    return trigger * (SIZE // len(trigger))


@pytest.mark.parametrize("make", [endless, lambda t: b"y" * (SIZE - len(t)) + t])
@pytest.mark.parametrize("trigger", sorted(TRIGGERS))
def test_an_adversarial_16_mib_line_costs_a_bounded_amount(
    tmp_path: Path, cost: Cost, trigger: str, make: Callable[[bytes], bytes]
) -> None:
    log = tmp_path / "train.log"
    line = make(TRIGGERS[trigger])
    log.write_bytes(line + TAIL)
    hits = replay(log)
    # The lines after it are read as ever: the traceback there is one unit, reported once.
    last = [h for h in hits if h.line == 4]
    assert [(h.rule.reason, h.evidence[0]) for h in last] == [
        ("PythonUncaughtException", "KeyError: 'after the long line'")
    ]
    # A detector reports the long line at most once, however often its trigger repeats.
    detected = [h for h in hits if h.line == 1 and h.rule.detector is not None]
    assert len(detected) <= 1
    # In Python, a detector reads at most LINE_LIMIT bytes of a line at a time, or copies
    # the piece of it in one read whole (the evidence of a hit, as the plain rules do):
    # never more than one read, and a few reads' worth in all for 16 MiB.
    assert cost.largest <= BLOCK
    assert cost.total <= 2 * BLOCK
    assert cost.calls <= 16


def test_the_line_iterator_hands_out_at_most_line_limit_bytes(cost: Cost) -> None:
    data = b"Traceback (most recent call last):" * 4096 + b"\nshort\n"
    counted_lines = vars(python_traceback)["lines"]  # the fixture's counting wrapper
    sizes = [len(line) for _, line in counted_lines(data, 0, len(data))]
    assert sizes == [detectors.LINE_LIMIT, 5]
    assert cost.largest == detectors.LINE_LIMIT
