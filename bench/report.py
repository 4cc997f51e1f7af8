"""Results with targets, the printed table, machine facts and the JSON file."""

import json
import math
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Result:
    section: str
    name: str
    value: float | None
    unit: str
    target: tuple[str, float] | None = None
    """(">=" or "<=", threshold), or None for a figure reported for context."""
    detail: str = ""

    @property
    def passed(self) -> bool | None:
        if self.target is None or self.value is None:
            return None
        op, threshold = self.target
        return self.value >= threshold if op == ">=" else self.value <= threshold

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: ""}[self.passed]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed, "verdict": self.verdict}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def table(results: list[Result]) -> str:
    rows = [("Section", "Measure", "Value", "Unit", "Target", "Verdict", "Detail")]
    for r in results:
        target = f"{r.target[0]} {r.target[1]:g}" if r.target else ""
        rows.append((r.section, r.name, fmt(r.value), r.unit, target, r.verdict, r.detail))
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    lines = []
    for index, row in enumerate(rows):
        cells = [row[i].rjust(widths[i]) if i == 2 else row[i].ljust(widths[i]) for i in range(6)]
        lines.append(("  ".join(cells) + "  " + row[6]).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def checks(profile: str, passed: list[str], elapsed_s: float) -> str:
    """What a run too small to measure reports: the checks that passed, no figures."""
    lines = [f"ok  {line}" for line in passed]
    lines.append(
        f"\nprofile {profile}, {elapsed_s:.0f} s: {len(passed)} checks passed. Too small to "
        "measure: no figures, no targets judged (run without --smoke for those)."
    )
    return "\n".join(lines)


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "?"


def machine() -> dict[str, Any]:
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    try:
        grep = (
            subprocess.run(["grep", "--version"], capture_output=True, timeout=10, check=False)
            .stdout.decode()
            .splitlines()[0]
        )
    except (OSError, subprocess.TimeoutExpired, IndexError):
        grep = "?"
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "grep": grep,
        "google-re2": _version("google-re2"),
        "watchdog": _version("watchdog"),
        "aiohttp": _version("aiohttp"),
        "pod-watcher": _version("pod-watcher"),
        "tree": _tree(),
        "loadavg_at_start": loadavg(),
    }


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _tree() -> str:
    """The commit measured, and whether the working tree differs from it."""
    root = Path(__file__).parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, timeout=10, check=False
        )
        return done.stdout.decode().strip()

    try:
        head = git("rev-parse", "--short", "HEAD") or "no commit"
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", "watcher")
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return f"{head}{' + uncommitted changes in watcher/' if dirty else ''}"


def print_machine(facts: dict[str, Any]) -> None:
    print("Machine: " + ", ".join(f"{k}={v}" for k, v in facts.items()))


def write_json(
    path: Path,
    facts: dict[str, Any],
    results: list[Result],
    extra: dict[str, Any],
) -> None:
    document = {"machine": facts, "results": [r.as_dict() for r in results], **extra}
    path.write_text(json.dumps(document, indent=2, default=str) + "\n", "utf-8")
