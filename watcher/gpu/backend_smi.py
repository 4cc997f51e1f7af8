"""Moved to `watcher.gpu.backends.smi`. This old name stays only for `bench/gpu_poll.py`, which
another engineer owns; delete it once that imports the new one."""

from watcher.gpu.backends.smi import SmiBackend

__all__ = ["SmiBackend"]
