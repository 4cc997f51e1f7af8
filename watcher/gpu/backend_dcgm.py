"""Moved to `watcher.gpu.backends.dcgm`. This old name stays only for `bench/gpu_poll.py`, which
another engineer owns; delete it once that imports the new one."""

from watcher.gpu.backends.dcgm import DcgmBackend

__all__ = ["DcgmBackend"]
