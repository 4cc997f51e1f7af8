"""The GPU relay: readings of the trainer's GPUs, taken inside the trainer's container.

With the NVIDIA device plugin the GPUs belong to the container that requests them, the
trainer's; the watcher's sidecar sees none of them. The launcher runs in that container,
so it starts this relay when the watcher asked for one in ``run/gpu-relay.json`` (the
period, the deadline of one read, what to read). The relay is a process of its own, in
its own session, at a lower priority (nice 10): a blocked nvidia-smi or NVML call stalls
the relay alone, never the launcher's copying of the output or its signals.

Each period it reads the GPUs once (`gpu_read`: nvidia-smi's raw answer or NVML's values,
never judged here) and replaces ``run/gpu-report.json`` atomically with that answer, the
UUIDs NVIDIA_VISIBLE_DEVICES names, and its own CPU time (itself and its children). It
holds ``run/gpu-relay.lock`` while it runs, so the watcher tells a dead relay (lock free)
from a stuck one (report old). It ends when its launcher is gone, when the watcher takes
its request back, or on SIGTERM; with no GPU and no tool here it says so once and ends.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

from .gpu_read import Nvml, Smi, evident, find_smi, visible_uuids
from .settings import Settings, say

RUN_DIR = "run"
REQUEST = "gpu-relay.json"
"""Written by the watcher: {"period", "timeout", "read": "health"|"identity", "query", "format"}."""
REPORT = "gpu-report.json"
RELAY_LOCK = "gpu-relay.lock"
VERSION = 1
MIN_PERIOD = 0.1
NICENESS = 10
STOP_WAIT = 0.5
"""Seconds the launcher gives the relay to end after SIGTERM before SIGKILL."""
TOOLS = ("auto", "nvml", "nvidia-smi")
"""POD_WATCHER_GPU_TOOL: which tool the relay uses (auto: NVML if it loads, else nvidia-smi)."""
_FIELD = re.compile(r"^[A-Za-z0-9_.]+$")
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from {package}.gpu_relay import main; sys.exit(main(sys.argv[2:]))"
)


# -- in the launcher -------------------------------------------------------------------


def start(settings: Settings, start_number: int) -> subprocess.Popen[bytes] | None:
    """Start the relay if the watcher asked for one; it is stopped when the launcher ends."""
    if not os.path.isfile(os.path.join(settings.home, RUN_DIR, REQUEST)):
        return None
    boot = _BOOT.format(package=__package__)
    command = [sys.executable or "python3", "-c", boot, _path_entry(), settings.home]
    try:
        proc = subprocess.Popen(
            [*command, str(start_number)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # the workload's signals are not the relay's
        )
    except OSError as exc:
        say(f"cannot start the GPU relay: {exc}")
        return None
    atexit.register(stop, proc)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL. poll() is 0 if the launcher's reaping took it already."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(OSError):
        proc.terminate()
    try:
        proc.wait(STOP_WAIT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            proc.kill()


def _path_entry() -> str:
    """What to put on sys.path to import this package: the archive, or a source tree."""
    path = os.path.dirname(os.path.abspath(__file__))
    for _ in (__package__ or "").split("."):
        path = os.path.dirname(path)
    return path


# -- the relay process -----------------------------------------------------------------


def main(argv: list[str]) -> int:
    home, start_number = argv[0], int(argv[1])
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    # SIGTERM (the launcher ending) unwinds: a running nvidia-smi is killed with its group.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    return Relay(os.path.join(home, RUN_DIR), start_number, os.environ).run()


class Relay:
    def __init__(self, run_dir: str, start_number: int, environ: Mapping[str, str]) -> None:
        self.run_dir = run_dir
        self.start = start_number
        self.environ = environ
        self.parent = os.getppid()
        self.seq = 0
        self.polls = 0
        self.began = time.monotonic()
        self.request: dict[str, Any] | None = None
        self._stamp: tuple[float, int, int] | None = None
        self.tool: Smi | Nvml | None = None
        self.tool_problem = ""
        self.poll: dict[str, Any] | None = None
        self.evidence = evident(environ)
        self.write_problem: str | None = None

    def path(self, name: str) -> str:
        return os.path.join(self.run_dir, name)

    def run(self) -> int:
        if not self._hold_lock():
            return 1
        try:
            return self._loop()
        finally:
            if self.tool is not None:
                self.tool.close()

    def _loop(self) -> int:
        while True:
            if os.getppid() != self.parent:
                return 0  # the launcher is gone
            request = self._read_request()
            if request is None:
                self._report("the watcher took its request back")
                return 0
            if self.tool is None and not self.tool_problem:
                self._choose_tool(request["timeout"])
            if self.tool is None and self.evidence is None:
                self._report(f"no GPU in the trainer's container ({self.tool_problem})")
                return 0
            if self._wants_poll(request):
                self._poll(request)
            self._report(None)
            _sleep_to_beat(self.began, request["period"])

    def _hold_lock(self) -> bool:
        try:
            fd = os.open(self.path(RELAY_LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            say(f"GPU relay: cannot hold {RELAY_LOCK} ({exc}): another relay runs")
            return False
        return True  # held until the process ends

    def _read_request(self) -> dict[str, Any] | None:
        """The watcher's request, read again when the file changed; None once it is gone."""
        try:
            st = os.stat(self.path(REQUEST))
        except OSError:
            return None
        stamp = (st.st_mtime, st.st_size, st.st_ino)
        if stamp != self._stamp or self.request is None:
            self._stamp = stamp
            fresh = _parse_request(self.path(REQUEST))
            if fresh is not None:
                self.request = fresh
            elif self.request is None:
                return None
        return self.request

    def _choose_tool(self, timeout: float) -> None:
        wanted = self.environ.get("POD_WATCHER_GPU_TOOL", "auto").strip() or "auto"
        problems = []
        if wanted not in TOOLS:
            say(f"ignoring POD_WATCHER_GPU_TOOL={wanted!r}: not one of {', '.join(TOOLS)}")
            wanted = "auto"
        if wanted in ("auto", "nvml"):
            nvml, why = Nvml.load(timeout)
            if nvml is not None:
                self.tool = nvml
                return
            problems.append(why)
        if wanted in ("auto", "nvidia-smi"):
            path = find_smi(self.environ)
            if path is not None:
                self.tool = Smi(path)
                return
            problems.append("nvidia-smi is not on the trainer's PATH")
        self.tool_problem = "; ".join(problems)

    def _wants_poll(self, request: dict[str, Any]) -> bool:
        """Health: every period. Identity: until one read answered, unless the UUIDs are
        known from NVIDIA_VISIBLE_DEVICES."""
        if self.tool is None:
            return False
        if request["read"] == "health":
            return True
        if visible_uuids(self.environ):
            return False
        return self.poll is None or not _answered(self.poll)

    def _poll(self, request: dict[str, Any]) -> None:
        began = time.monotonic()
        if isinstance(self.tool, Smi):
            args = ["--query-gpu=" + ",".join(request["query"]), "--format=" + request["format"]]
            answer = self.tool.run(args, request["timeout"])
        else:
            assert self.tool is not None
            answer = self.tool.read(request["timeout"])
        self.polls += 1
        answer.update(at=round(began, 6), seconds=round(time.monotonic() - began, 6))
        answer.update(number=self.polls, request=request.get("id"))
        self.poll = answer

    def _report(self, done: str | None) -> None:
        self.seq += 1
        times = os.times()
        report = {
            "version": VERSION,
            "pid": os.getpid(),
            "start": self.start,
            "seq": self.seq,
            "time": round(time.time(), 6),
            "mono": round(time.monotonic(), 6),
            "period": None if self.request is None else self.request["period"],
            "evidence": self.evidence,
            "uuids": visible_uuids(self.environ),
            "tool": None if self.tool is None else self.tool.name,
            "tool_path": getattr(self.tool, "path", None),
            "tool_problem": self.tool_problem or None,
            "poll": self.poll,
            "cost": {
                "polls": self.polls,
                "cpu_s": round(times[0] + times[1], 6),
                "children_cpu_s": round(times[2] + times[3], 6),
                "running_s": round(time.monotonic() - self.began, 3),
            },
            "done": done,
        }
        problem = _replace(self.path(REPORT), json.dumps(report, separators=(",", ":")).encode())
        if problem is not None and problem != self.write_problem:  # said once, not each period
            say(f"GPU relay: {problem}")
        self.write_problem = problem


def _parse_request(path: str) -> dict[str, Any] | None:
    """The request with its values checked (None if it is not one)."""
    try:
        with open(path, "rb") as handle:
            value = json.loads(handle.read(1 << 16).decode("utf-8", "replace"))
    except (OSError, ValueError):
        return None
    if not isinstance(value, dict):
        return None
    period, timeout = value.get("period"), value.get("timeout")
    query, form = value.get("query"), value.get("format")
    if not isinstance(period, (int, float)) or not isinstance(timeout, (int, float)):
        return None
    if not isinstance(query, list) or not all(
        isinstance(f, str) and _FIELD.match(f) for f in query
    ):
        return None
    if not isinstance(form, str) or not _FIELD.match(form.replace(",", "")):
        return None
    return {
        "id": value.get("id"),
        "period": max(MIN_PERIOD, float(period)),
        "timeout": max(MIN_PERIOD, float(timeout)),
        "read": "identity" if value.get("read") == "identity" else "health",
        "query": query,
        "format": form,
    }


def _answered(poll: dict[str, Any]) -> bool:
    return poll.get("code") == 0 or bool(poll.get("gpus") and not poll.get("error"))


def _sleep_to_beat(began: float, period: float) -> None:
    """Until the next multiple of ``period`` after ``began`` (a late poll skips beats)."""
    now = time.monotonic()
    time.sleep(period - ((now - began) % period))


def _replace(path: str, data: bytes) -> str | None:
    """Write a new version of ``path`` atomically, readable by the watcher's user; or why
    it could not be written."""
    temporary = f"{os.path.join(os.path.dirname(path), '.' + os.path.basename(path))}.{os.getpid()}"
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        return f"cannot write {path}: {exc}"
    return None
