"""The launcher as the trainer's container runs it: a real process, Python 3.8 where the
machine has it, with the watcher's side played by the watcher's own `SharedDir`."""

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.waiting import wait_until
from watcher.workload.install import MODULES, install
from watcher.workload.shared import SharedDir

pytestmark = pytest.mark.slow
SOURCE = Path(__file__).resolve().parents[2] / "watcher" / "launcher"


def _python38() -> str | None:
    """A Python 3.8 that really runs (a pyenv shim may only name one)."""
    candidates = [
        shutil.which("python3.8"),
        *map(str, Path.home().glob(".pyenv/versions/3.8*/bin/python3.8")),
    ]
    for candidate in filter(None, candidates):
        try:
            done = subprocess.run(
                [candidate, "--version"], capture_output=True, timeout=10, check=False
            )
        except OSError:
            continue
        if done.returncode == 0 and done.stdout.startswith(b"Python 3.8"):
            return candidate
    return None


PYTHON38 = _python38()


def interpreter() -> str:
    """The oldest interpreter the launcher promises to run on, where there is one."""
    return PYTHON38 or sys.executable


class Launched:
    """One launcher process and the directory it shares with a (pretend) watcher."""

    def __init__(self, root: Path, command: list[str], **env: str) -> None:
        self.root = root
        self.shared = SharedDir(root)
        self.proc = subprocess.Popen(
            [interpreter(), str(root / "launch"), "--", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "POD_WATCHER_TERMINATION_LOG": str(root / "term"), **env},
        )

    def records(self) -> list[dict[str, object]]:
        path = self.root / "run" / "launcher.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def exit_record(self) -> dict[str, object] | None:
        return next((r for r in self.records() if r["event"] == "exit"), None)

    def wait(self, timeout: float = 10.0) -> int:
        return self.proc.wait(timeout)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    install(tmp_path / "pw")
    return tmp_path / "pw"


@pytest.fixture
def launched(root: Path) -> Iterator[list[Launched]]:
    started: list[Launched] = []
    yield started
    for item in started:
        if item.proc.poll() is None:
            item.proc.kill()
        item.proc.communicate(timeout=10)


def launch(started: list[Launched], root: Path, command: list[str], **env: str) -> Launched:
    item = Launched(root, command, **env)
    started.append(item)
    return item


def py(code: str) -> list[str]:
    return [interpreter(), "-c", code]


def test_needs_nothing_newer_than_python_3_8_and_the_standard_library() -> None:
    vermin = subprocess.run(
        [str(Path(sys.executable).with_name("vermin")), "--no-tips", "--violations", "-t=3.8-",
         *(str(SOURCE / f"{name}.py") for name in MODULES)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert vermin.returncode == 0, vermin.stdout + vermin.stderr
    for name in MODULES:
        tree = ast.parse((SOURCE / f"{name}.py").read_text(), feature_version=(3, 8))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            assert all(r in sys.stdlib_module_names or r == "__future__" for r in roots), roots


def test_runs_on_python_3_8_where_the_machine_has_it() -> None:
    if PYTHON38 is None:
        pytest.skip("no python3.8 on this machine; the vermin check above still holds")
    assert interpreter() == PYTHON38  # every launcher test below runs on it


def test_output_goes_to_stdout_and_stderr_unchanged_and_to_the_log_in_whole_lines(
    root: Path, launched: list[Launched]
) -> None:
    code = (
        "import sys, time\n"
        "sys.stdout.write('out-a'); sys.stdout.flush(); time.sleep(0.05)\n"
        "sys.stderr.write('err line\\n'); sys.stderr.flush(); time.sleep(0.05)\n"
        "sys.stdout.write('-b\\n'); print('tail without newline', end='')\n"
    )
    item = launch(launched, root, py(code))
    out, err = item.proc.communicate(timeout=10)
    assert item.proc.returncode == 0
    assert out == b"out-a-b\ntail without newline"
    assert err.startswith(b"err line\n")
    lines = (root / "logs" / "workload.log").read_bytes().split(b"\n")
    assert sorted(lines) == sorted([b"out-a-b", b"err line", b"tail without newline"])


def test_the_log_is_rotated_by_size(root: Path, launched: list[Launched]) -> None:
    code = "for i in range(200): print('%04d' % i + 'x' * 45)"
    item = launch(launched, root, py(code), POD_WATCHER_LOG_MAX_BYTES="2000",
                  POD_WATCHER_LOG_BACKUPS="2")  # fmt: skip
    assert item.wait() == 0
    logs = root / "logs"
    sizes = {p.name: p.stat().st_size for p in logs.iterdir()}
    assert set(sizes) == {"workload.log", "workload.log.1", "workload.log.2"}
    assert all(size <= 2000 for size in sizes.values())
    newest = (logs / "workload.log").read_text().splitlines()
    assert newest[-1].startswith("0199")  # the end of the output is in the live file


def test_python_children_run_unbuffered(root: Path, launched: list[Launched]) -> None:
    item = launch(
        launched, root, [sys.executable, "-c", "print('early'); import time; time.sleep(30)"]
    )
    log = root / "logs" / "workload.log"
    wait_until(lambda: log.exists() and b"early" in log.read_bytes(), 10, "the unflushed line")
    item.proc.send_signal(signal.SIGTERM)
    assert item.wait() == 128 + signal.SIGTERM


def test_termination_signals_reach_the_command_group_and_need_no_verdict(
    root: Path, launched: list[Launched]
) -> None:
    marker = root.parent / "child-pid"
    code = f"sleep 60 & echo $! > {marker}; wait"
    item = launch(launched, root, ["sh", "-c", code])
    wait_until(lambda: marker.exists() and marker.read_text().strip(), 10, "the grandchild")
    grandchild = int(marker.read_text())
    started = time.monotonic()
    item.proc.send_signal(signal.SIGTERM)
    assert item.wait() == 128 + signal.SIGTERM
    assert time.monotonic() - started < 2.0  # no verdict to wait for after a SIGTERM
    wait_until(lambda: not _alive(grandchild), 5, "the grandchild to die")
    exit_record = item.exit_record()
    assert exit_record is not None and exit_record["forwarded"] == [signal.SIGTERM]


def test_the_exit_is_recorded_and_a_release_exits_with_its_code(
    root: Path, launched: list[Launched]
) -> None:
    root_shared = SharedDir(root)
    root_shared.hold_lock()  # a watcher is there
    item = launch(launched, root, py("import sys; sys.exit(7)"))
    exit_record = wait_until(item.exit_record, 10, "the exit record")
    assert (exit_record["code"], exit_record["signal"], exit_record["start"]) == (7, None, 1)
    time.sleep(0.3)
    assert item.proc.poll() is None  # waiting for the verdict
    root_shared.give_verdict(1, "release", "WorkloadFailed: restart budget exhausted")
    assert item.wait() == 7
    assert "restart budget exhausted" in (root / "term").read_text()


def test_a_restart_verdict_waits_to_be_killed_within_its_limit(
    root: Path, launched: list[Launched]
) -> None:
    shared = SharedDir(root)
    shared.hold_lock()
    item = launch(launched, root, py("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"))
    wait_until(item.exit_record, 10, "the exit record")
    shared.give_verdict(1, "restart", "NcclWatchdogTimeout: exit 88", wait=0.6)
    started = time.monotonic()
    assert item.wait() == 128 + signal.SIGSEGV  # no restart came within 0.6 s
    assert 0.5 <= time.monotonic() - started < 3.0


def test_a_newer_verdict_replaces_the_one_waited_on(root: Path, launched: list[Launched]) -> None:
    shared = SharedDir(root)
    shared.hold_lock()
    item = launch(launched, root, py("import sys; sys.exit(1)"))
    wait_until(item.exit_record, 10, "the exit record")
    shared.give_verdict(1, "hold", "configured to hold")
    time.sleep(0.5)
    assert item.proc.poll() is None
    shared.give_verdict(1, "release", "let it fail")
    assert item.wait() == 1


def test_without_a_watcher_the_command_code_comes_back(
    root: Path, launched: list[Launched]
) -> None:
    started = time.monotonic()
    never = launch(launched, root, py("import sys; sys.exit(5)"))  # no lock file: none ever ran
    assert never.wait() == 5
    assert time.monotonic() - started < 3.0
    (root / "run" / "watcher.lock").touch()  # one ran, and is gone now
    gone = launch(launched, root, py("import sys; sys.exit(6)"), POD_WATCHER_ABSENT_WAIT="0.5")
    assert gone.wait() == 6
    assert b"no pod-watcher is running" in gone.proc.communicate()[1]


def test_a_stop_request_terminates_then_kills_the_command(
    root: Path, launched: list[Launched]
) -> None:
    shared = SharedDir(root)
    shared.hold_lock()
    ready = root.parent / "ready"
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"open({str(ready)!r}, 'w').close(); time.sleep(60)"
    )
    item = launch(launched, root, py(stubborn))
    wait_until(ready.exists, 10, "the command ignoring SIGTERM")
    shared.ask_stop(1, "LogSilence: restart budget exhausted; failing the Pod", grace=0.5)
    exit_record = wait_until(item.exit_record, 10, "the exit record")
    assert exit_record["signal"] == signal.SIGKILL
    assert exit_record["stopped"] == "LogSilence: restart budget exhausted; failing the Pod"
    shared.give_verdict(1, "release", "LogSilence: failing the Pod")
    assert item.wait() == 128 + signal.SIGKILL


def test_a_command_that_cannot_run_is_reported(root: Path, launched: list[Launched]) -> None:
    item = launch(launched, root, ["/no/such/trainer"])
    assert item.wait() == 127
    exit_record = item.exit_record()
    assert exit_record is not None and exit_record["code"] == 127
    assert "No such file" in str(exit_record["error"])


def test_starts_are_numbered_across_restarts(root: Path, launched: list[Launched]) -> None:
    for expected in (1, 2, 3):
        item = launch(launched, root, py("import os; print(os.environ['POD_WATCHER_START'])"))
        out, _ = item.proc.communicate(timeout=10)
        assert out.strip() == str(expected).encode()
    assert [r.start for r in SharedDir(root).new_events()] == [1, 1, 2, 2, 3, 3]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().split()[2] != "Z"
