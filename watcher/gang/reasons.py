"""The names the gang monitor, the policy and the actions share. Imports nothing."""

GANG = "gang"
"""The source of the gang monitor's findings."""
GANG_RESTART = "GangRestart"
"""The gang is restarting: its generation (attempt) moved past this Pod's."""
BARRIER_LIFTED = "GangBarrierLifted"
"""Every Pod of the gang reached this Pod's generation: /readyz answers 200."""
BARRIER_DEADLINE = "GangBarrierDeadline"
"""The barrier did not lift within WATCHER_GANG_BARRIER_TIMEOUT."""
COORDINATION_LOST = "GangCoordinationLost"
"""The shared object cannot be followed (API stalled, failing or forbidding)."""
COORDINATION_BACK = "GangCoordinationBack"
"""Contact with the shared object is back."""

GENERATION = "gang_generation"
"""Key, in a finding's facts and a decision's details, of the generation a gang restart
moves the gang to: the same number in every Pod for one gang restart."""
GANG_KEY = "gang"
"""Key of the gang's name (``jobset/<ns>/<name>``, ``lease/<ns>/<name>``) in details."""
FOLLOW = "gang_follow"
"""Key in a decision's details: this Pod follows a peer's gang restart (no Event, no
annotation, no early write: the peer that decided did those)."""


def gang_key(kind: str, namespace: str, name: str) -> str:
    """The gang's name in the ledger (`GANG_KEY`): its coordinator's and what a new start
    looks for in its last restart must be the same string."""
    return f"{kind}/{namespace}/{name}"
