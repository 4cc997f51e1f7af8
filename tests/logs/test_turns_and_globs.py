"""Files take turns; a symlinked directory gets events; one glob engine; globs that match
nothing; catch_up reads everything before it returns."""

import asyncio
import os
from pathlib import Path

import pytest

from tests.logs.helpers import DeafWatcher, append, running
from watcher.logs.globs import GlobError, GlobSet, check_glob, escape
from watcher.logs.monitor import Timing
from watcher.logs.unmatched import REASON
from watcher.types import Severity

MIB = 1 << 20
FAR = Timing(poll_interval=86400.0, fallback_poll_interval=86400.0, rotate_wait=1.0)
"""No safety-net tick within a test: ticks fall on multiples of the interval of the
monotonic clock, so a 60 s interval ticked within any test's first second once in 60 runs."""


async def test_a_long_backlog_in_one_file_does_not_hold_back_another(tmp_path: Path) -> None:
    backlog, other = tmp_path / "a-backlog.log", tmp_path / "b-other.log"
    other.write_bytes(b"")
    async with running([tmp_path / "*.log"], timing=FAR) as run:
        with backlog.open("wb") as handle:  # 512 MiB of lines, written in one go
            line = b"step 1 | loss 2.0 | all is well " + b"." * 990 + b"\n"
            block = line * (MIB // len(line))
            for _ in range(512):
                handle.write(block)

        def reading() -> bool:
            tail = run.files.by_path.get(str(backlog))
            return tail is not None and tail.offset > 4 * MIB

        await run.until(reading, "the backlog being read")
        append(other, b"FATAL-1 in the other file\n")
        finding = await run.next()
        assert finding.file == str(other)
        assert run.tail(backlog).offset < os.stat(backlog).st_size / 2  # long before its end


async def test_a_symlinked_log_directory_gets_inotify_events(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "logs").symlink_to(real)
    async with running([tmp_path / "logs" / "*.log"], timing=FAR) as run:  # no re-stat soon
        append(real / "rank0.log", b"FATAL-2 through the link\n")
        finding = await run.next(within=3.0)
        assert finding.file == str(tmp_path / "logs" / "rank0.log")


async def test_one_engine_for_files_found_at_start_and_later(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    append(tmp_path / "a.log", b"started\n")
    async with running([f"{tmp_path}/**.log"], from_end=False) as run:
        assert [t.path for t in run.files.tails()] == [str(tmp_path / "a.log")]
        append(tmp_path / "sub" / "b.log", b"FATAL-3 below: **.log is *.log\n")
        append(tmp_path / "c.log", b"FATAL-4 beside\n")
        assert (await run.next()).file == str(tmp_path / "c.log")
        await run.quiet(0.3)


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("/l/**.log", "/l/a.log", True),
        ("/l/**.log", "/l/s/a.log", False),
        ("/l/**/*.log", "/l/a.log", True),
        ("/l/**/*.log", "/l/s/t/a.log", True),
        ("/l/**", "/l/s/t/a.log", True),
        ("/l/*.log", "/l/.hidden.log", True),
        ("/l/[ab].log", "/l/b.log", True),
        ("/l/[!ab].log", "/l/b.log", False),
        ("/l/[^a].log", "/l/^.log", True),  # `^` is a plain character, as in fnmatch
        ("/l/[[].log", "/l/[.log", True),
        ("/l/[.log", "/l/[.log", True),  # an unclosed `[` is literal
        ("/l/rank?.log", "/l/rank/.log", False),
    ],
)
def test_matching_and_expansion_agree(
    tmp_path: Path, pattern: str, path: str, matches: bool
) -> None:
    assert GlobSet([pattern]).matches(path) is matches
    local = tmp_path / path.lstrip("/")
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(b"")
    expanded = GlobSet([str(tmp_path) + pattern]).expand()
    assert (str(local) in expanded) is matches


@pytest.mark.parametrize("name", ["[z-a]", "[ab]", "a*b", "rank?", "[!x]", "**", "[", "plain"])
def test_an_escaped_path_matches_itself_and_nothing_else(tmp_path: Path, name: str) -> None:
    # a launcher directory is a path, not a glob: `[z-a]` in it must not be refused
    own = tmp_path / name / "out.log"
    own.parent.mkdir()
    own.write_bytes(b"")
    for other in ("a", "ab", "axb", "rank1", "y"):
        (tmp_path / other).mkdir(exist_ok=True)
        (tmp_path / other / "out.log").write_bytes(b"")
    check_glob(escape(str(own)))
    globs = GlobSet([escape(str(own))])
    assert globs.expand() == [str(own)]
    assert globs.matches(str(own))


@pytest.mark.parametrize(
    ("pattern", "error"),
    [("/l/[z-a].log", "bad character range z-a"), ("", "empty"), ("/l/\0", "NUL")],
)
def test_globs_that_can_never_work_are_refused(pattern: str, error: str) -> None:
    with pytest.raises(GlobError, match=error):
        check_glob(pattern)


async def test_a_glob_matching_nothing_after_the_grace_is_a_warning(tmp_path: Path) -> None:
    timing = Timing(
        poll_interval=60.0, fallback_poll_interval=60.0, rotate_wait=1.0, glob_grace=0.3
    )
    append(tmp_path / "a.log", b"started\n")
    missing = str(tmp_path / "typo" / "*.log")
    async with running([tmp_path / "*.log", missing], timing=timing) as run:
        assert run.monitor.status()["globs_matching_nothing"] is None  # within the grace
        finding = await run.next(within=2.0)
        assert (finding.reason, finding.severity) == (REASON, Severity.WARNING)
        assert finding.message == f"the log glob {missing} matches no file 0.3s after start"
        assert run.monitor.status()["globs_matching_nothing"] == [missing]
        assert run.monitor.globs_matching_nothing() == 1
        (tmp_path / "typo").mkdir()
        append(tmp_path / "typo" / "x.log", b"started\n")
        await run.until(lambda: run.monitor.globs_matching_nothing() == 0, "the glob matches")
        await run.quiet(0.2)


async def test_catch_up_reads_what_the_files_gained_before_it_returns(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_bytes(b"")
    async with running([log], timing=FAR, watcher_factory=DeafWatcher) as run:
        append(log, b"FATAL-5 no event will tell\n")
        await asyncio.sleep(0.1)
        assert run.findings.empty()
        await run.monitor.catch_up()
        assert not run.findings.empty()
