"""The GPU tests read no WATCHER_ variable and no NVIDIA_VISIBLE_DEVICES from the shell that
runs them: the settings let the environment win over their arguments."""

import os

import pytest


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("WATCHER_") or name == "NVIDIA_VISIBLE_DEVICES":
            monkeypatch.delenv(name)
