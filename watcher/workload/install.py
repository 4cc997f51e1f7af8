"""Install the launcher into the directory shared with the trainer's container.

The launcher is a package of small modules (`watcher.launcher`); it ships as one zip
application, which any Python 3.8+ runs as ``python3 /pod-watcher/launch -- COMMAND``.
The archive is built from the package's own files with fixed timestamps, so every install
of one version writes the same bytes, and an unchanged file is left alone.
"""

import io
import os
import zipfile
from importlib import resources
from pathlib import Path

from watcher.launcher.channel import RUN_DIR
from watcher.launcher.logcopy import LOG_DIR

LAUNCHER = "launch"
PACKAGE = "pod_watcher_launch"
"""The launcher's package name inside the archive."""
MODULES = ("__init__", "settings", "logcopy", "channel", "runner", "main", "gpu_read", "gpu_relay")
SHEBANG = b"#!/usr/bin/env python3\n"
MAIN = (
    '"""pod-watcher launch: see pod_watcher_launch/__init__.py."""\n'
    "import sys\n\n"
    f"from {PACKAGE}.main import main\n\n"
    "sys.exit(main())\n"
)
STAMP = (2020, 1, 1, 0, 0, 0)
SHARED_MODE = 0o777
"""The trainer may run as any user: it must create files in the shared directories."""


def launcher_archive() -> bytes:
    """The zip application, shebang first (a zip may carry a prefix)."""
    source = resources.files("watcher.launcher")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("__main__.py", STAMP), MAIN)
        for name in MODULES:
            text = (source / f"{name}.py").read_text("utf-8")
            archive.writestr(zipfile.ZipInfo(f"{PACKAGE}/{name}.py", STAMP), text)
    return SHEBANG + buffer.getvalue()


def install(directory: Path) -> Path:
    """Create the shared layout under ``directory`` and put the launcher there. Blocking."""
    directory.mkdir(parents=True, exist_ok=True)
    for sub in (RUN_DIR, LOG_DIR):
        path = directory / sub
        path.mkdir(exist_ok=True)
        if path.stat().st_mode & 0o777 != SHARED_MODE:
            path.chmod(SHARED_MODE)
    target = directory / LAUNCHER
    data = launcher_archive()
    try:
        if target.read_bytes() == data:
            return target
    except OSError:
        pass
    temporary = directory / f".{LAUNCHER}.tmp"
    temporary.write_bytes(data)
    os.chmod(temporary, 0o755)
    temporary.replace(target)
    return target
