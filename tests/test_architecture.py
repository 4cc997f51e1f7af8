"""The boundaries of docs/architecture.md hold, and the check would catch a breach."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")
EXITS = {("sys", "exit"), ("os", "_exit")}
MAY_EXIT = {
    "watcher/cli.py",
    "watcher/launcher/main.py",
    "watcher/launcher/__main__.py",
    "watcher/launcher/gpu_relay.py",
}
"""The watcher's entry point, and the launcher and its GPU relay, programs of their own."""


def lint(cwd: Path, package_parent: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT), "--config", str(cwd / "pyproject.toml"), "--no-cache"],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(package_parent)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_import_contract_is_kept() -> None:
    result = lint(ROOT, ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_planted_forbidden_import_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(
        ROOT / "watcher", tmp_path / "watcher", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    window = tmp_path / "watcher" / "policy" / "window.py"
    window.write_text(window.read_text() + "\nimport watcher.logs.monitor  # planted\n")
    result = lint(tmp_path, tmp_path)
    assert result.returncode != 0, result.stdout
    assert "the policy decides from findings and the ledger alone BROKEN" in result.stdout
    assert "watcher.policy.window -> watcher.logs.monitor" in result.stdout


def test_only_the_entry_point_exits() -> None:
    """The policy decides, the actions carry out, and `watcher.cli` alone ends the process."""
    offenders = []
    for path in sorted((ROOT / "watcher").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and (node.func.value.id, node.func.attr) in EXITS
                and relative not in MAY_EXIT
            ):
                offenders.append(f"{relative}:{node.lineno}")
    assert offenders == []
