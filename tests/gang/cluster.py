"""N real `pod-watcher` processes against the fake API, each with its own fake Pod, files
and state directory, as one gang (a JobSet with the fake JobSet controller, or a Lease).

The kubelet is the test's: `restart` turns a Pod's status into the one after
RestartAllContainers and starts its watcher again on the same state directory."""

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.conftest import launched_from
from tests.e2e.process import Record, WatcherProcess
from tests.e2e.workload import Paths
from tests.kube.api_answers import Obj
from tests.kube.fake_api import ThreadedFakeApi, write_kubeconfig
from tests.kube.fake_jobset import FakeJobSetController, in_place_jobset, jobset_pod
from tests.kube.manifests import WATCHER, restart_in_place
from tests.waiting import wait_until

JOBSET = "js"
LEASE = "gang"


@dataclass
class Member:
    index: int
    pod: str
    paths: Paths
    env: dict[str, str]
    process: WatcherProcess | None = None


@dataclass
class Gang:
    api: ThreadedFakeApi
    root: Path
    size: int
    mode: str = "jobset"
    extra: dict[str, str] = field(default_factory=dict)
    max_restarts: int = 3
    """The JobSet's maxRestarts and each watcher's WATCHER_MAX_RESTARTS."""
    launcher: bool = True
    """Each watcher with a launcher directory (`fail` needs it); without, a watcher uses
    two inotify instances instead of four (the per-user limit is often 128)."""
    members: list[Member] = field(default_factory=list)
    controller: FakeJobSetController | None = None
    _started: list[WatcherProcess] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def setup(self) -> "Gang":
        self.root.mkdir(parents=True, exist_ok=True)
        config = write_kubeconfig(self.root / "kubeconfig", self.api.url, "fake-token")
        if self.mode == "jobset":
            self.api.api.put(
                in_place_jobset(
                    JOBSET, replicas=1, parallelism=self.size, max_restarts=self.max_restarts
                )
            )
            self.controller = FakeJobSetController(self.api.api)
            self.api.run(self.controller.start())
        for index in range(self.size):
            self.members.append(self._member(index, config))
        return self

    def _member(self, index: int, config: Path) -> Member:
        home = self.root / f"pod{index}"
        logs = home / "logs"
        logs.mkdir(parents=True)
        (logs / "train.log").write_text("", "utf-8")
        paths = Paths(home, logs, logs / "train.log", home / "state", home / "termination-log")
        launcher = home / "pw"
        env = (
            paths.env(
                KUBECONFIG=str(config),
                WATCHER_POD_NAMESPACE="default",
                WATCHER_CONTAINER_NAME=WATCHER,
                WATCHER_API_TIMEOUT="1",
                WATCHER_LAUNCHER_DIR=str(launcher) if self.launcher else "",
                WATCHER_GANG=self.mode,
                WATCHER_MAX_RESTARTS=str(min(100, self.max_restarts)),
                WATCHER_GANG_NAME=JOBSET if self.mode == "jobset" else LEASE,
            )
            | self.extra
        )
        pod = jobset_pod(JOBSET, index)
        pod["metadata"]["labels"]["batch.kubernetes.io/job-name"] = LEASE
        env["WATCHER_POD_NAME"] = pod["metadata"]["name"]
        if self.mode == "lease":
            env |= {"WATCHER_GANG_SIZE": str(self.size), "WATCHER_GANG_INDEX": str(index)}
        self.api.api.put(launched_from(pod, env) if self.launcher else without_launcher(pod))
        return Member(index, pod["metadata"]["name"], paths, env)

    def start(self, member: Member, **env: str) -> WatcherProcess:
        process = WatcherProcess({**member.env, **env}, cwd=member.paths.root).start()
        member.process = process
        with self._lock:
            self._started.append(process)
        return process

    def start_all(self, **env: str) -> None:
        for member in self.members:
            self.start(member, **env)

    def wait_all_ready(self, timeout: float = 60.0) -> None:
        for member in self.members:
            assert member.process is not None
            member.process.wait_ready(timeout)

    def wait_all_exit(self, timeout: float = 30.0) -> list[int]:
        return [self.proc(m).wait_exit(timeout) for m in self.members]

    def proc(self, member: Member) -> WatcherProcess:
        assert member.process is not None
        return member.process

    def restart(self, member: Member, **env: str) -> WatcherProcess:
        """What the kubelet does after exit 88: every container restarted, the watcher too."""
        self.api.api.put(restart_in_place(self.api.api.pod(member.pod)))
        return self.start(member, **env)

    def jobset_status(self) -> dict[str, object]:
        found = self.api.api.get("jobsets", JOBSET)
        assert found is not None
        status: dict[str, object] = found.get("status", {})
        return status

    def restarts(self, member: Member) -> list[dict[str, object]]:
        return member.paths.ledger_entries("restart")

    def describe(self) -> str:
        return "\n".join(f"== pod {m.index}\n{self.proc(m).describe()}" for m in self.members)

    def close(self) -> None:
        for process in self._started:
            process.close()


def without_launcher(pod: Obj) -> Obj:
    """The Pod with its trainer run directly, under its own restart rule (JobSet's example)."""
    rule = {"action": "RestartAllContainers", "exitCodes": {"operator": "NotIn", "values": [0]}}
    for entry in pod["spec"]["containers"]:
        if entry["name"] == "trainer":
            entry |= {"command": ["python", "train.py"], "restartPolicy": "Never"}
            entry["restartPolicyRules"] = [rule]
    return pod


def port_of(process: WatcherProcess, timeout: float = 30.0) -> int:
    """The HTTP port from the `starting` line (before `ready`: the barrier may hold it)."""
    record: Record = process.wait_log(lambda r: r.get("msg") == "starting", timeout, "starting")
    process.port = int(record["port"])
    return process.port


def wait_for(condition: Callable[[], object], timeout: float, what: str, gang: Gang) -> None:
    wait_until(lambda: condition() or None, timeout, what, gang.describe)
