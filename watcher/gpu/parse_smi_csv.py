"""Moved to `watcher.gpu.formats.smi_csv`. This old name stays only for `bench/gpu_poll.py`, which
another engineer owns; delete it once that imports the new one."""

from watcher.gpu.formats.smi_csv import QUERY_FIELDS

__all__ = ["QUERY_FIELDS"]
