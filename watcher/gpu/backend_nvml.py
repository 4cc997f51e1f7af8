"""Moved to `watcher.gpu.backends.nvml`. This old name stays only for `bench/gpu_poll.py`, which
another engineer owns; delete it once that imports the new one."""

from watcher.gpu.backends.nvml import NvmlBackend

__all__ = ["NvmlBackend"]
