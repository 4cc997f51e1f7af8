"""A kubelet model: one Pod's containers as real processes, run the way the kubelet runs them.

What it models (docs/kubelet.md):
- init containers in order; a native sidecar (`restartPolicy: Always`) counts as started
  once its startupProbe (HTTP GET on 127.0.0.1) passes; then the regular containers;
- a sync every `relist` seconds (the PLEG relists every second) that first computes the
  phase, and only then looks at restart rules: a Pod whose regular containers all stopped
  with nothing to restart them is Failed (or Succeeded), and a sidecar's exit 88 after
  that changes nothing;
- the first matching `restartPolicyRules` entry decides; `RestartAllContainers` kills every
  running container (SIGTERM, SIGKILL after 2 s, whatever the grace period), removes them,
  counts a restart on every container, shows each as terminated 137 /
  `RestartingAllContainers`, and starts again from the first init container, with no
  back-off between cycles;
- a container that restarts alone (a sidecar, a `Restart` rule) gets the crash-loop
  back-off; a terminal Pod's sidecars get SIGTERM and the grace period.

A container is its main process and every process that inherits its marker variable, so
SIGKILL reaches the children a launcher started in their own process group.
"""

import asyncio
import contextlib
import os
import signal
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.kubelet.pod import ContainerSpec, PodSpec
from tests.kubelet.status import RESTARTING, TERMINAL, ContainerStatus

KILL_GRACE = 2.0
"""The restart-all kill: every container gets at most this long after SIGTERM."""
MARKER = "KUBELET_MODEL_CONTAINER"


class KubeletModel:
    def __init__(
        self,
        spec: PodSpec,
        workdir: Path,
        *,
        relist: float = 1.0,
        backoff: float = 10.0,
        env: Mapping[str, str] | None = None,
        termination_logs: Mapping[str, Path] | None = None,
    ) -> None:
        self.spec = spec
        self.workdir = workdir
        self.relist = relist
        self.backoff = backoff
        self.env = dict(env or {})
        self.termination_logs = dict(termination_logs or {})
        self.statuses = {c.name: ContainerStatus(c.name) for c in spec.all}
        self.phase = "Pending"
        self.cycles: list[float] = []
        """Monotonic times of each RestartAllContainers."""
        self.timeline: list[tuple[float, str, str]] = []
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._due: dict[str, float] = {}
        self._task: asyncio.Task[str] | None = None

    # -- driving it ----------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kubelet-model")

    async def wait_phase(self, *phases: str, within: float) -> str:
        deadline = time.monotonic() + within
        while self.phase not in phases:
            if self._task is not None and self._task.done():
                self._task.result()  # raise what killed the model
            if time.monotonic() >= deadline:
                raise AssertionError(f"phase {self.phase}, not {phases}, after {within}s\n{self}")
            await asyncio.sleep(0.02)
        return self.phase

    async def wait_cycles(self, count: int, within: float) -> None:
        deadline = time.monotonic() + within
        while len(self.cycles) < count:
            if self.phase in TERMINAL or time.monotonic() >= deadline:
                raise AssertionError(f"{len(self.cycles)} restarts, not {count}\n{self}")
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for name in list(self._procs):
            self._kill_container(name)
        for proc in self._procs.values():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 5)

    def __str__(self) -> str:
        events = "\n".join(f"  {t:8.3f} {what:<10} {name}" for t, what, name in self.timeline)
        return f"Pod {self.phase}, {len(self.cycles)} restart-all cycles\n{events}"

    def note(self, what: str, name: str) -> None:
        self.timeline.append((time.monotonic(), what, name))

    def container_log(self, name: str) -> Path:
        return self.workdir / f"{name}.container.log"

    # -- the sync loop ---------------------------------------------------------------

    async def _run(self) -> str:
        while self.phase not in TERMINAL:
            await self._sync()
            if self.phase in TERMINAL:
                break
            await asyncio.sleep(self._pause())  # exits are seen at the next relist
        return self.phase

    def _pause(self) -> float:
        """The relist period; a pending startup probe is checked on its own period."""
        probing = [
            c.startup_probe.period
            for c in self.spec.init_containers
            if c.startup_probe is not None
            and self.statuses[c.name].state == "running"
            and not self.statuses[c.name].started
        ]
        return min([self.relist, *probing])

    async def _sync(self) -> None:
        self._collect_exits()
        phase = self._compute_phase()
        if phase in TERMINAL:
            self.note(phase, "pod")
            await self._terminate()
            self.phase = phase
            return
        self.phase = phase
        if any(self._restarts_all(c) for c in self.spec.all):
            await self._restart_all()
            return
        self._restart_alone()
        await self._start_next()

    def _collect_exits(self) -> None:
        for name, proc in list(self._procs.items()):
            if proc.returncode is None:
                continue
            del self._procs[name]
            code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
            self.statuses[name].terminated(code, self._message(name))
            self.note(f"exit {code}", name)

    def _message(self, name: str) -> str | None:
        path = self.termination_logs.get(name)
        try:
            return None if path is None else path.read_text("utf-8", "replace")[:4096]
        except OSError:
            return None

    def _compute_phase(self) -> str:
        """`getPhase`: regular containers only; terminal once none runs or can restart."""
        regular = [(c, self.statuses[c.name]) for c in self.spec.containers]
        for c in self.spec.init_containers:
            status = self.statuses[c.name]
            failed = status.state == "terminated" and status.exit_code != 0
            if not c.sidecar and failed and self.spec.restart_policy == "Never":
                return "Failed"
        if not any(s.ever_started for _, s in regular):
            return "Pending"
        live = [
            s for c, s in regular
            if s.state != "terminated" or s.reason == RESTARTING
            or c.should_restart(s.exit_code or 0, self.spec.restart_policy)
        ]  # fmt: skip
        if live:
            return "Running"
        return "Succeeded" if all(s.exit_code == 0 for _, s in regular) else "Failed"

    def _restarts_all(self, c: ContainerSpec) -> bool:
        status = self.statuses[c.name]
        return status.state == "terminated" and c.restarts_all_on(status.exit_code or 0)

    async def _restart_all(self) -> None:
        began = time.monotonic()
        self.note("RESTART-ALL", "pod")
        await asyncio.gather(*(self._stop(name, KILL_GRACE) for name in list(self._procs)))
        for status in self.statuses.values():
            status.removed_for_restart_all()
        self._due.clear()
        self.cycles.append(began)

    def _restart_alone(self) -> None:
        """A terminated container whose own rule or policy restarts it, after a back-off."""
        now = time.monotonic()
        for c in self.spec.all:
            status = self.statuses[c.name]
            if status.state != "terminated" or c.name in self._due:
                continue
            if c.sidecar or (
                not c.init and c.should_restart(status.exit_code or 0, self.spec.restart_policy)
            ):
                delay = min(300.0, self.backoff * 2**status.crashes)
                self._due[c.name] = now + delay
                status.crashes += 1
                self.note(f"backoff {delay:g}s", c.name)

    async def _start_next(self) -> None:
        """Init containers in order (a sidecar lets the next start once its startupProbe
        passed), then every regular container; a container in back-off waits its turn."""
        for c in self.spec.init_containers:
            status = self.statuses[c.name]
            if status.init_done:
                if c.sidecar and status.state == "terminated" and self._may_start(c):
                    await self._launch(c)  # a sidecar that crashed restarts alone
                continue
            if status.state == "waiting" or (status.state == "terminated" and self._may_start(c)):
                await self._launch(c)
            if not await self._init_done(c):
                return
        for c in self.spec.containers:
            if self.statuses[c.name].state != "running" and self._may_start(c):
                await self._launch(c)

    async def _init_done(self, c: ContainerSpec) -> bool:
        status = self.statuses[c.name]
        if c.sidecar:
            if status.state != "running" or not await self._probe(c):
                return False
            status.started = status.init_done = True
            self.note("started", c.name)
            return True
        status.init_done = status.state == "terminated" and status.exit_code == 0
        return status.init_done

    def _may_start(self, c: ContainerSpec) -> bool:
        status = self.statuses[c.name]
        if status.state == "waiting":
            return True
        due = self._due.get(c.name)
        return due is not None and time.monotonic() >= due

    async def _probe(self, c: ContainerSpec) -> bool:
        probe = c.startup_probe
        if probe is None:
            return True
        url = f"http://127.0.0.1:{probe.port}{probe.path}"
        return await asyncio.to_thread(_http_ok, url)

    async def _launch(self, c: ContainerSpec) -> None:
        status = self.statuses[c.name]
        if c.name in self._due:
            del self._due[c.name]
            status.restarted_alone()
        base = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
        marker = f"{id(self)}/{c.name}/{status.restart_count}"
        env = {**base, **self.env, **c.env, MARKER: marker}
        with self.container_log(c.name).open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                *c.argv, env=env, cwd=self.workdir, stdin=asyncio.subprocess.DEVNULL,
                stdout=log, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        self._procs[c.name] = proc
        status.running(marker)
        self.note("start", c.name)

    async def _terminate(self) -> None:
        await asyncio.gather(*(self._stop(name, self.spec.grace) for name in list(self._procs)))

    async def _stop(self, name: str, grace: float) -> None:
        proc = self._procs.get(name)
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            self.note("SIGKILL", name)
        self._kill_container(name)
        await proc.wait()
        self._collect_exits()

    def _kill_container(self, name: str) -> None:
        """SIGKILL the container's processes: its main one and all that carry its marker."""
        marker = self.statuses[name].marker
        for pid in _pids_with(f"{MARKER}={marker}".encode()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def pod_status(self) -> dict[str, Any]:
        """The Pod's status as the API would show it."""
        return {
            "phase": self.phase,
            "initContainerStatuses": [
                self.statuses[c.name].api() for c in self.spec.init_containers
            ],
            "containerStatuses": [self.statuses[c.name].api() for c in self.spec.containers],
        }


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return 200 <= int(response.status) < 400
    except OSError:
        return False


def _pids_with(needle: bytes) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                if needle + b"\0" in handle.read() + b"\0":
                    found.append(int(entry))
        except OSError:
            continue
    return found
