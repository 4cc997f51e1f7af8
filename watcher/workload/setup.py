"""Prepare the directory shared with the trainer: the launcher, its layout, our lock."""

import logging
from pathlib import Path

from watcher.config.load import ConfigError
from watcher.state.startup import Launcher
from watcher.workload.install import install
from watcher.workload.shared import SharedDir

log = logging.getLogger(__name__)


def open_launcher(directory: Path | None) -> SharedDir | None:
    """Install the launcher into ``directory`` and hold the watcher's lock there. Blocking,
    at start, before the watcher reports ready (so the trainer, which starts after that,
    finds the launcher). Problems are configuration errors: exit 2, never a restart."""
    if directory is None:
        return None
    name = f"WATCHER_LAUNCHER_DIR={directory}"
    try:
        target = install(directory)
    except OSError as exc:
        raise ConfigError([f"{name}: cannot install the launcher: {exc}"]) from None
    shared = SharedDir(directory)
    try:
        shared.hold_lock()
    except OSError as exc:
        raise ConfigError(
            [
                f"{name}: another watcher holds {shared.run / 'watcher.lock'} ({exc}); one "
                "watcher per launcher directory"
            ]
        ) from None
    log.info("launcher installed", extra={"fields": {"launcher": str(target)}})
    return shared


def launcher_state(shared: SharedDir | None) -> Launcher:
    """Running (its lock is held), stopped (it ran, it is gone) or absent (it never ran)."""
    if shared is None or not shared.records.exists():
        return "absent"
    return "running" if shared.launcher_running() else "stopped"
