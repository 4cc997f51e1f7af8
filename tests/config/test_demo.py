"""The README's demo: its first command installs only what running needs, the demo
listens on 127.0.0.1 alone, and its /status shows the matched line of a finding, not the
log lines after it."""

import ast
import re
import shutil
import socket
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.e2e.process import WatcherProcess

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text("utf-8")
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
CUDA_CRASH = (
    "[rank3]: RuntimeError: CUDA error: an illegal memory access was encountered\n"
    "[rank3]: CUDA kernel errors might be asynchronously reported at some other API call\n"
    "[rank3]: For debugging consider passing CUDA_LAUNCH_BLOCKING=1\n"
)
"""From tests/corpus/cuda/fatal/CudaIllegalAddress--modern-rank-prefixed.log: the rule
keeps up to 3 lines after the match as evidence."""


def first_command() -> str:
    return str(re.findall(r"```sh\n(.*?)```", README, re.DOTALL)[0]).strip()


def distributions(requirements: list[str]) -> set[str]:
    return {Requirement(r).name.lower().replace("_", "-") for r in requirements}


def imported_modules() -> set[str]:
    """Top-level names every module of the package imports (lazy imports included)."""
    names = set()
    for path in (ROOT / "watcher").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def test_the_first_command_installs_the_package_without_the_test_extra() -> None:
    command = first_command()
    assert "pip install -q -e . &&" in command, command
    assert "[test]" not in command
    assert command.endswith("WATCHER_CONFIG=examples/local.yaml .venv/bin/pod-watcher run")


def test_running_imports_nothing_the_plain_install_lacks() -> None:
    runtime = distributions(PROJECT["dependencies"])
    test_only = distributions(PROJECT["optional-dependencies"]["test"]) - runtime
    owners = packages_distributions()
    for module in sorted(imported_modules() - {"watcher"}):
        provided = {d.lower().replace("_", "-") for d in owners.get(module, [])}
        assert not provided & test_only, f"watcher imports {module} from the test extra"
        assert not provided or provided & runtime, f"{module} ({provided}) is no dependency"


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of examples/ to run the demo in, as from the repository root."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    return tmp_path


def connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except ConnectionRefusedError:
        return False


@pytest.mark.slow
def test_the_demo_listens_on_localhost_only_and_shows_no_lines_after_the_match(
    demo: Path,
) -> None:
    env = {
        "WATCHER_CONFIG": "examples/local.yaml",
        "WATCHER_HTTP_PORT": "0",  # the file's 9188 may be taken on a shared machine
        "WATCHER_LOG_FORMAT": "json",  # for the harness, which reads JSON lines
        "WATCHER_MAX_RESTARTS": "0",  # fail instead of exiting, to look at /status
    }
    watcher = WatcherProcess(env, cwd=demo).start()
    try:
        port = watcher.wait_ready()
        assert connects("127.0.0.1", port)
        assert not connects("127.0.0.2", port)  # a 0.0.0.0 listener would accept this
        with (demo / "examples/logs/train.log").open("a", encoding="utf-8") as log:
            log.write(CUDA_CRASH)
        status = watcher.wait_status(lambda s: bool(s["ledger"]), "the fail in /status")
    finally:
        watcher.close()
    matched = CUDA_CRASH.splitlines()[0]
    [finding] = status["recent_findings"]
    assert (finding["evidence"], finding["evidence_lines"]) == ([matched], 3)
    [entry] = status["ledger"]
    assert (entry["action"], entry["evidence"], entry["evidence_lines"]) == ("fail", [matched], 3)
    assert "CUDA_LAUNCH_BLOCKING" not in str(status)
    ledger = (demo / ".pod-watcher/state/ledger.jsonl").read_text("utf-8")
    assert "CUDA_LAUNCH_BLOCKING" in ledger  # the whole evidence stays in the state dir
