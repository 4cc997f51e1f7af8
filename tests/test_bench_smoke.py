"""A smoke run of the benchmark checks that it works and says only that: no figures, no
verdicts, since at its size start-up and timer resolution are all it would measure."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIGURE = re.compile(r"\d\s*(MB/s|ms|MiB|% core)|\bx\b|PASS|FAIL")


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )


@pytest.mark.slow
def test_replay_smoke_reports_its_checks_and_no_figures() -> None:
    done = bench("bench.replay", "--smoke")
    assert done.returncode == 0, done.stderr
    assert "ok  replay training log, 2.0 MB: exactly the 20 planted fatal lines" in done.stdout
    assert "ok  replay NCCL INFO only, 1.0 MB: nothing fatal" in done.stdout
    assert not FIGURE.search(done.stdout), done.stdout


@pytest.mark.slow
def test_replay_against_an_earlier_tree_runs_that_trees_watcher(tmp_path: Path) -> None:
    tree = tmp_path / "before"
    (tree / "watcher").mkdir(parents=True)
    (tree / "watcher" / "__init__.py").touch()
    runs = tmp_path / "runs"  # each replay by that tree's watcher adds a line here
    (tree / "watcher" / "__main__.py").write_text(
        f"with open({str(runs)!r}, 'a') as f:\n    f.write('ran\\n')\n"
    )
    out = tmp_path / "replay.json"
    done = bench("bench.replay", "--smoke", "--against", str(tree), "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert runs.read_text().count("ran") == 4  # start-up and replay, for each of two logs
    results = json.loads(out.read_text())
    assert results["against"] == str(tree)
    for label in ("training log", "NCCL INFO only"):
        assert {"replay_mb_s", "ratio", "against_mb_s", "against_ratio"} <= set(results[label])
    refused = bench("bench.replay", "--smoke", "--against", str(tmp_path))
    assert refused.returncode == 2
    assert f"--against {tmp_path}: no watcher/__main__.py there" in refused.stderr


@pytest.mark.slow
def test_run_smoke_reports_its_checks_and_no_figures() -> None:
    done = bench("bench.run", "--smoke", "--only", "scan", "--only", "exit")
    assert done.returncode == 0, done.stderr
    report = done.stdout.split("\n", 1)[1]  # after the machine line (versions, load)
    assert "ok  scan: main: 20 matching lines, as grep -E -f" in report
    assert "ok  exit: 2 fatal lines: exit 88 with the termination message" in report
    assert "3 checks passed" in report
    assert not FIGURE.search(report), report
