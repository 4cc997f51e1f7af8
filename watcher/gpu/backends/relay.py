"""The relay backend: the trainer's GPUs, read in the trainer's container by the launcher.

Under the NVIDIA device plugin the watcher's container holds no GPU. The launcher, which
runs the trainer's command in the container that does, starts a GPU relay when asked
(`watcher/launcher/gpu_relay.py`): each period it runs nvidia-smi (or reads NVML) there
and reports the raw answer in ``run/gpu-report.json``. Each poll of this backend asks for
that (period, deadline, the nvidia-smi fields), reads the latest report and gives it the
meaning a local nvidia-smi or NVML would have (`smi.interpret`, `formats.relay_nvml`).

What is no reading is said too. The trainer's container not running (before its start,
between restarts): nothing to read, nothing wrong. A relay that died (its lock free for
longer than a grace of two periods, a deadline and a second) or that stopped reporting
(lock held, report older than the grace): a warning each (`GpuRelayDown`,
`GpuRelayStale`). The grace also covers a relay that just started and has not reported.
A relay that found no GPU in the trainer's container: quiet under `auto`, a warning
when `WATCHER_GPU=relay` asked for it.

`RelayUuids` serves the dcgm backend: the trainer's GPU UUIDs, from the relay.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from watcher.gpu.backends.command import MAX_OUTPUT, Run
from watcher.gpu.backends.relay_files import RelayFiles, Report
from watcher.gpu.backends.smi import interpret
from watcher.gpu.formats.relay_nvml import parse_relay_nvml
from watcher.gpu.formats.smi_csv import QUERY_FIELDS, fallback_fields, parse_query_csv
from watcher.gpu.model import Snapshot, ToolFailure, ToolProblem

SOURCE = "relay"
FORMAT = "csv,nounits"
IDENTITY_FIELDS = ("uuid", "pci.bus_id", "index", "name")
Now = Callable[[], float]


def request(period: float, timeout: float, read: str, fields: Sequence[str]) -> dict[str, Any]:
    return {"period": period, "timeout": timeout, "read": read, "query": list(fields),
            "format": FORMAT}  # fmt: skip


@dataclass
class RelayCost:
    """The relay's own CPU time in the trainer's container, summed over relay processes."""

    seconds: float = 0.0
    last: tuple[tuple[int | None, int], float] | None = None
    """((launcher start, pid), cpu seconds) of the latest report counted."""
    per_poll_ms: float | None = None
    children_per_poll_ms: float | None = None

    def add(self, report: Report) -> None:
        cpu, kids = _number(report.cost.get("cpu_s")), _number(report.cost.get("children_cpu_s"))
        polls = _number(report.cost.get("polls"))
        total = cpu + kids
        relay = (report.start, report.pid)
        before = 0.0 if self.last is None or self.last[0] != relay else self.last[1]
        self.seconds += max(0.0, total - before)
        self.last = (relay, total)
        if polls:
            self.per_poll_ms, self.children_per_poll_ms = cpu / polls * 1000, kids / polls * 1000


class RelayBackend:
    """Reads the trainer's GPUs through the launcher's GPU relay (files in ``run/``)."""

    name = SOURCE

    def __init__(
        self,
        files: RelayFiles,
        *,
        period: float,
        timeout: float,
        named: bool,
        fields: Sequence[str] = QUERY_FIELDS,
        now: Now = time.monotonic,
    ) -> None:
        self.files = files
        self.period = period
        self.timeout = timeout
        self.named = named
        """Asked for by WATCHER_GPU=relay: a trainer without GPUs is then a warning."""
        self.fields = tuple(fields)
        self._now = now
        self._lock_seen: tuple[bool, float] | None = None
        """Whether the relay held its lock at the last look, and since when."""
        self._cached: tuple[tuple[int, int, int], Snapshot] | None = None
        self.cost = RelayCost()
        self.state = "starting"
        self.report: Report | None = None

    @property
    def grace(self) -> float:
        """How long a report may be missing or old: two periods, a deadline, and a second."""
        return 2 * self.period + self.timeout + 1.0

    async def poll(self) -> Snapshot:
        try:
            self.files.ask(request(self.period, self.timeout, "health", self.fields))
        except OSError as exc:
            return self._failed(ToolProblem.FAILED, f"cannot ask for the GPU relay: {exc}")
        report = self.report = self.files.report()
        if not self.files.launcher_running():
            self._lock_seen = None
            return self._quiet("the trainer's container is not running")
        return self._from(report, self._now(), self.files.relay_alive())

    def _from(self, report: Report | None, now: float, alive: bool) -> Snapshot:
        """While the trainer's container runs: the report, or why there is none."""
        if report is not None and report.done is not None and not alive:
            return self._done(report)
        if self._lock_seen is None or self._lock_seen[0] != alive:
            self._lock_seen = (alive, now)  # the relay started, or ended: the grace begins
        settled = now - self._lock_seen[1] > self.grace
        fresh = report if report is not None and now - report.mono <= self.grace else None
        if fresh is not None and (alive or not settled):  # a dead relay's last word, a while
            self.cost.add(fresh)
            return self._read(fresh)
        if not settled:
            return self._quiet("waiting for the GPU relay's report")
        if alive:
            age = "ever" if report is None else f"{now - report.mono:.0f}s"
            detail = f"the GPU relay holds its lock but has not reported for {age}"
            return self._failed(ToolProblem.RELAY_STALE, detail)
        detail = (
            f"no GPU relay runs in the trainer's container ({self.files.run / 'gpu-relay.lock'} "
            "is free): it died, or the launcher started before the watcher asked for it"
        )
        return self._failed(ToolProblem.RELAY_DOWN, detail)

    def _done(self, report: Report) -> Snapshot:
        if not self.named:
            return self._quiet(f"the GPU relay ended: {report.done}")
        return self._failed(ToolProblem.NO_DEVICES, f"the GPU relay ended: {report.done}")

    def _read(self, report: Report) -> Snapshot:
        poll = report.poll
        if report.tool is None:
            why = report.tool_problem or "no GPU tool"
            detail = f"the trainer's container has GPUs ({report.evidence}) but {why}"
            return self._failed(ToolProblem.NO_BACKEND, detail)
        if poll is None:
            return self._quiet("waiting for the GPU relay's first poll")
        self.state = f"reporting from {report.tool} in the trainer's container"
        # A relay's pid repeats across in-place restarts (a fresh PID namespace each time).
        key = (report.start or 0, report.pid, int(poll.get("number") or 0))
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        snapshot = parse_relay_nvml(poll) if report.tool == "nvml" else self._smi(poll)
        self._cached = (key, snapshot)
        return snapshot

    def _smi(self, poll: dict[str, Any]) -> Snapshot:
        there = "in the trainer's container"
        if poll.get("stuck_pid"):
            detail = f"nvidia-smi (pid {poll['stuck_pid']}) {there} is stuck after being killed"
            return self._failed(ToolProblem.TIMED_OUT, detail)
        if poll.get("timed_out"):
            detail = f"nvidia-smi {there} did not finish within {self.timeout:g}s: killed"
            return self._failed(ToolProblem.TIMED_OUT, detail)
        if poll.get("error"):
            return self._failed(ToolProblem.FAILED, str(poll["error"])[:300])
        code = poll.get("code")
        run = Run(code if isinstance(code, int) else -1, str(poll.get("stdout") or ""),
                  str(poll.get("stderr") or ""), overflow=bool(poll.get("overflow")))  # fmt: skip
        fewer = fallback_fields(self.fields, run.text) if run.code != 0 else None
        if fewer is not None:  # an older driver refused a field: ask the relay without it
            self.fields = fewer
            return self._quiet("nvidia-smi refused a field; asked the relay again without it")
        if not _asked(poll, self.fields):
            return self._quiet("waiting for the GPU relay to poll the fields asked for")
        return interpret(run, MAX_OUTPUT, SOURCE)

    def _quiet(self, state: str) -> Snapshot:
        self.state = state
        return Snapshot(SOURCE)

    def _failed(self, problem: ToolProblem, detail: str) -> Snapshot:
        self.state = detail
        return Snapshot(SOURCE, failures=(ToolFailure(problem, detail),))

    def status(self) -> dict[str, Any]:
        report = self.report
        return {
            "state": self.state,
            "directory": str(self.files.run),
            "relay_running": self.files.relay_alive(),
            "report_age_s": None if report is None else round(self._now() - report.mono, 3),
            "relay_pid": None if report is None else report.pid,
            "tool": None if report is None else report.tool,
            "tool_path": None if report is None else report.tool_path,
            "uuids": [] if report is None else list(report.uuids),
            "evidence": None if report is None else report.evidence,
            "fields": list(self.fields),
            "relay_cpu_ms_per_poll": _round(self.cost.per_poll_ms),
            "relay_children_cpu_ms_per_poll": _round(self.cost.children_per_poll_ms),
        }

    def counters(self) -> dict[str, float]:
        return {"relay_cpu_seconds": self.cost.seconds}

    async def close(self) -> None:
        """Holds nothing: the request stays, for the next watcher of this Pod."""


class RelayUuids:
    """The trainer's GPU UUIDs through the relay, for the dcgm backend: from the trainer's
    NVIDIA_VISIBLE_DEVICES, else from one nvidia-smi run there. Once known, kept."""

    def __init__(self, files: RelayFiles, period: float, timeout: float) -> None:
        self.files = files
        self._request = request(period, timeout, "identity", IDENTITY_FIELDS)
        self.known: tuple[str, ...] | None = None

    def __call__(self) -> tuple[str, ...] | None:
        try:
            self.files.ask(self._request)
        except OSError:
            return self.known
        report = self.files.report()
        if report is None:
            return self.known
        if report.uuids:
            self.known = report.uuids
        elif report.poll is not None:
            self.known = _polled_uuids(report.tool, report.poll) or self.known
        return self.known


def _polled_uuids(tool: str | None, poll: dict[str, Any]) -> tuple[str, ...]:
    """The UUIDs of the GPUs one relayed read answered for (nvidia-smi's CSV, NVML's)."""
    if tool == "nvml":
        readings = parse_relay_nvml(poll).readings
    elif poll.get("code") == 0:
        readings = parse_query_csv(str(poll.get("stdout") or "")).readings
    else:
        return ()
    return tuple(r.gpu.uuid for r in readings if r.gpu.uuid)


def _asked(poll: dict[str, Any], fields: Sequence[str]) -> bool:
    """Whether the relay's run queried ``fields`` (not an older request's)."""
    args = poll.get("args")
    wanted = "--query-gpu=" + ",".join(fields)
    return not isinstance(args, list) or wanted in args


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
