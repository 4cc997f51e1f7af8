"""Where to start reading, from what the state directory and the launcher tell.

- The launcher ran before but is not running now: every container was restarted (a
  RestartAllContainers, whoever asked for it). Begin at the end of every file: they still
  hold the fatal line and the dying workload's last errors, which must not trigger again.
- The launcher is running: the watcher alone restarted (a crash, an OOM kill, a liveness
  kill, or a kill between its ledger entry and its exit). Resume at the saved cursors, so
  nothing written meanwhile is missed; a restart the ledger shows but that never happened
  (the launcher outlived it) is marked ``not_taken`` by the caller.
- No launcher: the ledger decides. A restart no start has seen yet means the same as a
  stopped launcher; saved cursors mean the watcher alone restarted.
- First start ever: the configured position (the end, by default).

A file without a cursor for its inode appeared after the last save and is read whole, and
a file rotated away meanwhile is read from its cursor under its new name
(`TrackedFiles.open_existing`).
"""

from dataclasses import dataclass
from typing import Literal

from watcher.logs.files import OpenPolicy
from watcher.state.cursors import CursorSnapshot
from watcher.state.ledger import Ledger, LedgerEntry, restarts

StartMode = Literal["after_restart", "resume", "fresh"]
Launcher = Literal["running", "stopped", "absent"]
"""The launcher's state at start: holding its lock, ran before but gone, never ran."""


@dataclass(frozen=True)
class StartPlan:
    mode: StartMode
    open_policy: OpenPolicy
    acknowledged_restart: str | None
    """The ledger restart this start accounts for; saved with the cursors."""
    not_taken: LedgerEntry | None = None
    """A restart the ledger records that did not happen: the launcher still runs."""


def requested_restart(ledger: Ledger) -> LedgerEntry | None:
    """The latest restart the watcher asked for and that was not found to be not taken."""
    asked = [entry for entry in restarts(ledger.entries) if not entry.details.get("observed")]
    return asked[-1] if asked else None


def plan_start(
    ledger: Ledger,
    cursors: CursorSnapshot | None,
    start_position: Literal["end", "start"],
    launcher: Launcher = "absent",
) -> StartPlan:
    last = requested_restart(ledger)
    acknowledged = cursors.acknowledged_restart if cursors is not None else None
    unseen = last is not None and last.id != acknowledged
    latest = last.id if last is not None else acknowledged
    if launcher == "stopped" or (launcher == "absent" and unseen):
        return StartPlan("after_restart", OpenPolicy(from_end=True, resume={}), latest)
    not_taken = last if launcher == "running" and unseen else None
    if cursors is not None:
        policy = OpenPolicy(from_end=False, resume=dict(cursors.files))
        return StartPlan("resume", policy, latest, not_taken)
    if not_taken is not None:  # killed before it saved any cursor: read the logs again
        return StartPlan("resume", OpenPolicy(from_end=False, resume={}), latest, not_taken)
    return StartPlan("fresh", OpenPolicy(from_end=start_position == "end", resume={}), None)
