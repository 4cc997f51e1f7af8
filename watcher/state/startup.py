"""Where to start reading, from what the state directory remembers.

- After a restart this watcher asked for (the ledger holds a restart no start has seen):
  begin at the end of every file. They still hold the fatal line and the dying
  workload's last errors, which must not trigger again.
- After the watcher alone restarted (cursors exist, no new restart): resume each file at
  its saved cursor if it is the same inode, so nothing written meanwhile is missed; a
  file with no cursor for its inode appeared after the last save and is read whole, and
  a file rotated away meanwhile is read from its cursor under its new name
  (`TrackedFiles.open_existing`).
- First start ever: the configured position (the end, by default).
"""

from dataclasses import dataclass
from typing import Literal

from watcher.logs.files import OpenPolicy
from watcher.state.cursors import CursorSnapshot
from watcher.state.ledger import Ledger

StartMode = Literal["after_restart", "resume", "fresh"]


@dataclass(frozen=True)
class StartPlan:
    mode: StartMode
    open_policy: OpenPolicy
    acknowledged_restart: str | None
    """The ledger restart this start accounts for; saved with the cursors."""


def plan_start(
    ledger: Ledger, cursors: CursorSnapshot | None, start_position: Literal["end", "start"]
) -> StartPlan:
    last = ledger.last("restart")
    acknowledged = cursors.acknowledged_restart if cursors is not None else None
    if last is not None and last.id != acknowledged:
        return StartPlan("after_restart", OpenPolicy(from_end=True, resume={}), last.id)
    if cursors is not None:
        # A file without a cursor for its inode appeared (or was rotated) after the last
        # save, so all of it was written while the watcher was away: read it whole.
        policy = OpenPolicy(from_end=False, resume=dict(cursors.files))
        return StartPlan("resume", policy, acknowledged)
    return StartPlan("fresh", OpenPolicy(from_end=start_position == "end", resume={}), None)
