"""The exit-code contract. Only `watcher.cli` turns these into a process exit.

The restart code itself is configurable (`WATCHER_RESTART_EXIT_CODE`, default 88)
and is validated never to collide with the codes below or with 128+signal.
"""

from typing import Final

CLEAN: Final = 0
"""Clean stop: SIGTERM/SIGINT (Pod deletion) or a finished command. Never the trigger code."""

INTERNAL_ERROR: Final = 1
"""A bug: an exception nobody handled. Python's own default for an uncaught exception."""

CONFIG_ERROR: Final = 2
"""Bad configuration. Never listed in the restart rule, so a broken config cannot
restart-loop the whole Pod."""

RESERVED: Final = frozenset({CLEAN, INTERNAL_ERROR, CONFIG_ERROR})
"""Codes the restart code may not take."""

SIGNAL_BASE: Final = 128
"""Codes from 128 up mean "killed by signal N-128" (137 = SIGKILL/OOM, 143 = SIGTERM)."""
