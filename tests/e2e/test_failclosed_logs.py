"""The log source tells the truth about what it cannot read, against the real process."""

import functools
import os
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import Spawn
from tests.e2e.process import module_command
from tests.e2e.workload import NCCL_TIMEOUT, Paths, append

FAST = {"WATCHER_POLL_INTERVAL": "0.2"}


def without_dac_override() -> list[str]:
    """`python -m watcher` unable to read a file its mode forbids, even as root (the
    capabilities that override file modes dropped), so `chmod 000` means unreadable."""
    if os.geteuid() != 0:
        return module_command()
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv to drop CAP_DAC_OVERRIDE as root")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", *module_command()]


def warns(why: str, record: dict[str, object]) -> bool:
    return record.get("why") == why


def not_followed(status: dict[str, object]) -> dict[str, str]:
    shown = status["monitors"]["log"]["not_followed"]["paths"]  # type: ignore[index]
    return {entry["path"]: entry["why"] for entry in shown}


@pytest.mark.slow
def test_a_file_unreadable_at_start_is_read_from_its_end_once_readable(
    paths: Paths, spawn: Spawn
) -> None:
    rank1 = paths.logs / "rank1.log"
    append(rank1, NCCL_TIMEOUT + "\n")  # from before the start: must never fire
    rank1.chmod(0)
    watcher = spawn(without_dac_override(), **FAST)
    watcher.wait_ready()
    assert not_followed(watcher.status()) == {str(rank1): "unreadable"}
    watcher.wait_log(
        lambda r: r.get("why") == "unreadable" and r.get("path") == str(rank1), 5.0, "a warning"
    )
    rank1.chmod(0o644)
    watcher.wait_status(lambda s: not not_followed(s), "the file followed once readable")
    watcher.assert_stays_alive(0.5)  # before: the old fatal line fired, read from byte 0
    offset = append(rank1, NCCL_TIMEOUT + "\n")
    assert watcher.wait_exit(5.0) == 88
    assert f"byte {offset}" in paths.termination.read_text("utf-8")


@pytest.mark.slow
def test_a_fifo_a_utf16_log_and_the_kernel_log_are_reported(paths: Paths, spawn: Spawn) -> None:
    os.mkfifo(paths.logs / "pipe.log")
    utf16 = paths.logs / "windows.log"
    utf16.write_bytes("FATAL: CUDA error: an illegal memory access\r\n".encode("utf-16"))
    globs = f"{paths.logs}/*.log,/dev/kmsg" if Path("/dev/kmsg").exists() else f"{paths.logs}/*.log"
    watcher = spawn(WATCHER_LOG_PATHS=globs)
    watcher.wait_ready()
    expected = {str(paths.logs / "pipe.log"): "not_regular", str(utf16): "unsupported_encoding"}
    if "kmsg" in globs:
        expected["/dev/kmsg"] = "kernel_log"
    assert not_followed(watcher.status()) == expected
    for why in expected.values():
        watcher.wait_log(functools.partial(warns, why), 5.0, f"a {why} warning")
    counts = watcher.status()["monitors"]["log"]["not_followed"]["by_kind"]
    assert counts == {why: 1 for why in expected.values()}
    watcher.assert_stays_alive(0.3)


@pytest.mark.slow
def test_a_glob_that_matches_nothing_is_a_warning(paths: Paths, spawn: Spawn) -> None:
    typo = str(paths.root / "lgos" / "*.log")
    watcher = spawn(WATCHER_LOG_PATHS=f"{paths.logs}/*.log,{typo}", WATCHER_LOG_GLOB_GRACE="0.5")
    watcher.wait_ready()
    watcher.wait_log(lambda r: r.get("glob") == typo, 5.0, "the warning about the glob")
    decision = watcher.wait_log(
        lambda r: r.get("event") == "decision" and r.get("reason") == "LogGlobMatchesNothing",
        5.0,
        "the warning finding's decision",
    )
    assert decision["action"] == "warn"
    log = watcher.status()["monitors"]["log"]
    assert log["globs_matching_nothing"] == [typo]
    watcher.assert_stays_alive(0.2)
