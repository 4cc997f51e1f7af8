"""How big and how long each part of the benchmark runs, per mode."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    corpus_mb: float
    adversarial_mb: float
    scan_runs: int
    ready_runs: int
    exit_runs: int
    idle_s: float
    settle_s: float
    sustained_s: float
    sustained_runs: int
    judged: bool = True
    """Whether its figures mean anything. A smoke run is too small to measure (start-up
    and timer resolution dominate): it only checks that every section works."""


PROFILES = {
    "full": Profile("full", 100, 50, 3, 10, 20, 30, 3, 10, 3),
    "quick": Profile("quick", 10, 5, 3, 5, 10, 10, 3, 5, 1),
    "smoke": Profile("smoke", 2, 1, 3, 2, 2, 2, 1, 2, 1, judged=False),
}
