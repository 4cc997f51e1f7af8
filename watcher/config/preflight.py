"""Checks of the places the watcher writes to, done before it watches anything.

A state directory that cannot be written means no restart budget; a termination log
that cannot be written means a lost reason. Both are found at start-up, not at the
first fault.
"""

import os
import tempfile
from pathlib import Path

from watcher.config.settings import WatcherSettings


def preflight(settings: WatcherSettings) -> list[str]:
    """Problems with the state directory and termination log, one line each."""
    problems = []
    if settings.state_dir is not None:
        problem = _writable_dir(settings.state_dir)
        if problem:
            problems.append(f"WATCHER_STATE_DIR={settings.state_dir}: {problem}")
    if settings.termination_log is not None:
        problem = _writable_file(settings.termination_log)
        if problem:
            problems.append(
                f"WATCHER_TERMINATION_LOG={settings.termination_log}: {problem} "
                "(set it to a writable path, or to an empty value to disable it)"
            )
    return problems


def _writable_dir(path: Path) -> str | None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe-"):
            pass
    except OSError as exc:
        return f"not a writable directory: {exc.strerror or exc}"
    return None


def _writable_file(path: Path) -> str | None:
    if path.is_dir():
        return "is a directory"
    if path.exists():
        return None if os.access(path, os.W_OK) else "exists but is not writable"
    parent = path.parent
    if not parent.is_dir():
        return f"its directory {parent} does not exist"
    return None if os.access(parent, os.W_OK) else f"its directory {parent} is not writable"
