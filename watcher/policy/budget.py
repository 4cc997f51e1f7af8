"""The restart budget, computed from the ledger in one place.

Every in-place restart counts: the ones the watcher asked for (``restart`` entries, minus
those a later start found were never carried out: ``not_taken``) and the ones it only
observed (``restart`` entries marked ``observed``: a rule on the trainer, another
sidecar, a restart while the watcher was down). The kubelet spaces RestartAllContainers
cycles by nothing, so the back-off between two restarts is the watcher's own.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from watcher.gang.reasons import GANG_KEY, GENERATION
from watcher.state.ledger import LedgerEntry, restarts


@dataclass(frozen=True)
class BudgetConfig:
    max_restarts: int
    window: float
    min_uptime: float = 0.0
    backoff: float = 0.0
    """Seconds between the first and the second restart in the window; doubled for each
    further one; 0 turns the back-off off."""
    backoff_max: float = 300.0


@dataclass(frozen=True)
class Allowance:
    """Whether a restart may happen, and when."""

    allowed: bool
    why: str = ""
    """Why not, when not allowed."""
    delay: float = 0.0
    """Seconds to wait first (the back-off), when allowed."""
    details: dict[str, object] = field(default_factory=dict)


Age = Callable[[LedgerEntry], float]
"""Seconds since an entry happened, whatever the wall clock did since (`Ledger.age`)."""


def in_window(entries: Sequence[LedgerEntry], age: Age, window: float) -> list[LedgerEntry]:
    """The restarts within ``window``; one gang restart counts once (entries carrying the
    same gang and generation are one restart of the whole gang)."""
    seen: set[tuple[object, object]] = set()
    counted = []
    for entry in restarts(entries):
        if age(entry) >= window:
            continue
        generation = entry.details.get(GENERATION)
        if generation is not None:
            key = (entry.details.get(GANG_KEY), generation)
            if key in seen:
                continue
            seen.add(key)
        counted.append(entry)
    return counted


def backoff_for(config: BudgetConfig, restarts_so_far: int) -> float:
    """The least time between the last restart and the next one."""
    if restarts_so_far < 1 or config.backoff <= 0:
        return 0.0
    return float(min(config.backoff_max, config.backoff * 2 ** (restarts_so_far - 1)))


def allowance(config: BudgetConfig, entries: Sequence[LedgerEntry], age: Age) -> Allowance:
    """May the watcher restart the Pod in place now (or after a back-off)? Ages come from
    the ledger, which maps wall-clock times onto the monotonic clock as they arrive, so a
    clock step neither spends nor refunds the budget."""
    recent = in_window(entries, age, config.window)
    details: dict[str, object] = {
        "restarts_in_window": len(recent),
        "max_restarts": config.max_restarts,
        "window_s": config.window,
    }
    if len(recent) >= config.max_restarts:
        why = (
            f"restart budget exhausted ({len(recent)} restarts in the last "
            f"{config.window:g}s, at most {config.max_restarts})"
        )
        return Allowance(False, why, details=details)
    if not recent:
        return Allowance(True, details=details)
    since = min(age(entry) for entry in recent)
    if since < config.min_uptime:
        why = f"the last restart was only {since:.0f}s ago (min_uptime {config.min_uptime:g}s)"
        return Allowance(False, why, details=details)
    delay = max(0.0, backoff_for(config, len(recent)) - since)
    if delay > 0:
        details["backoff_s"] = round(delay, 3)
    return Allowance(True, delay=delay, details=details)


def counts_generation(entries: Sequence[LedgerEntry], gang: object, generation: object) -> bool:
    """Whether a restart of this gang generation is in the ledger already (then following
    it costs no budget again)."""
    return any(
        (entry.details.get(GANG_KEY), entry.details.get(GENERATION)) == (gang, generation)
        for entry in restarts(entries)
    )
