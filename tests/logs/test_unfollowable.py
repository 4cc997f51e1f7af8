"""What the log source cannot follow is told: in the log, in /status, as counts."""

import logging
import os
from pathlib import Path

import pytest

from tests.logs.helpers import DEADLINE, append, running
from tests.state.volumes import descriptors_exhausted
from watcher.logs import refusals
from watcher.logs.monitor import Timing

FAST = Timing(poll_interval=0.2, fallback_poll_interval=0.1, rotate_wait=0.2)
WRITE_ONLY = Path("/sys/bus/platform/drivers_probe")
"""A sysfs attribute without a read method: opening it to read fails with EACCES even for
root, a real 'unreadable' without dropping privileges."""


def refused(status: dict[str, object]) -> dict[str, str]:
    shown = status["not_followed"]["paths"]  # type: ignore[index]
    return {entry["path"]: entry["why"] for entry in shown}


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "watcher.logs.refusals"]


@pytest.mark.skipif(not WRITE_ONLY.exists(), reason="needs sysfs")
async def test_an_unreadable_file_is_told(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "rank0.log").symlink_to(WRITE_ONLY)
    async with running([tmp_path / "*.log"]) as run:
        assert refused(run.monitor.status()) == {str(tmp_path / "rank0.log"): "unreadable"}
        detail = run.monitor.status()["not_followed"]["paths"][0]["detail"]
        assert detail == "Permission denied (EACCES)"
        assert run.monitor.not_followed()["unreadable"] == 1
        assert run.monitor.counters()["refusals_unreadable"] == 1
    assert warnings(caplog) == [refusals.MESSAGES["unreadable"]]


KMSG = Path("/dev/kmsg")


@pytest.mark.skipif(not KMSG.exists(), reason="no /dev/kmsg here")
async def test_a_fifo_a_device_and_the_kernel_log_are_told(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    os.mkfifo(tmp_path / "pipe.log")
    kmsg = KMSG
    async with running([tmp_path / "*.log", kmsg, tmp_path]) as run:
        assert refused(run.monitor.status()) == {
            str(tmp_path / "pipe.log"): "not_regular",
            str(kmsg): "kernel_log",
            str(tmp_path): "not_regular",  # a literal directory: a typo for dir/*.log
        }
        paths = run.monitor.status()["not_followed"]["paths"]
        details = {entry["path"]: entry["detail"] for entry in paths}
        assert details[str(tmp_path / "pipe.log")] == "a FIFO (named pipe)"
        assert details[str(tmp_path)].startswith(f"a directory: did you mean {tmp_path}/*.log")
        assert run.monitor.not_followed()["kernel_log"] == 1
        assert run.files.tails() == []
    assert refusals.MESSAGES["kernel_log"] in warnings(caplog)


async def test_a_utf16_log_is_told_not_misread(tmp_path: Path) -> None:
    log = tmp_path / "windows.log"
    log.write_bytes("FATAL-1 written by a UTF-16 logger\r\n".encode("utf-16"))
    bare = tmp_path / "bare.log"
    async with running([tmp_path / "*.log"], from_end=False) as run:
        bare.write_bytes("FATAL-2 little-endian, no BOM\n".encode("utf-16-le"))
        await run.until(lambda: str(bare) in refused(run.monitor.status()), "bare refused")
        assert refused(run.monitor.status()) == {
            str(log): "unsupported_encoding",
            str(bare): "unsupported_encoding",
        }
        await run.quiet(0.3)


async def test_too_many_files_warn_a_few_times_then_sum_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for number in range(300):
        (tmp_path / f"{number:03}.log").write_bytes(b"started\n")
    caplog.set_level(logging.WARNING)
    async with running([tmp_path / "*.log"], max_files=5, timing=FAST) as run:
        status = run.monitor.status()["not_followed"]
        assert status["count"] == 295
        assert len(status["paths"]) == refusals.SHOWN
        assert len(warnings(caplog)) == refusals.BURST
        for number in range(100, 300):
            (tmp_path / f"{number:03}.log").unlink()
        await run.until(
            lambda: run.monitor.status()["not_followed"]["count"] == 95, "deleted paths forgotten"
        )
        assert len(warnings(caplog)) == refusals.BURST


async def test_a_rotated_inode_being_drained_does_not_take_a_slot(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_bytes(b"started\n")
    async with running([tmp_path / "train.log"], max_files=1, timing=FAST) as run:
        log.rename(tmp_path / "train.log.1")
        append(log, b"FATAL-3 in the new file\n")
        finding = await run.next()
        assert (finding.file, finding.offset) == (str(log), 0)
        assert refused(run.monitor.status()) == {}


async def test_exhausted_descriptors_are_told_and_the_file_read_once_they_are_back(
    tmp_path: Path,
) -> None:
    async with running([tmp_path / "*.log"], timing=FAST) as run:
        with descriptors_exhausted(spare=4):
            (tmp_path / "late.log").write_bytes(b"FATAL-4 while descriptors were short\n")
            await run.until(
                lambda: (
                    refused(run.monitor.status()) == {str(tmp_path / "late.log"): "descriptors"}
                ),
                "refused for want of descriptors",
            )
        finding = await run.next(within=DEADLINE)
        assert finding.evidence == ("FATAL-4 while descriptors were short",)
        assert finding.offset == 0  # it appeared after start: read from its beginning
