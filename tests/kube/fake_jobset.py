"""A fake of JobSet's in-place restart controller, driving a JobSet's status in the fake API
from its Pods' `jobset.sigs.k8s.io/in-place-restart-attempt` annotations.

Written from our reading of kubernetes-sigs/jobset v0.12.0 (the rules are in docs/gang.md),
not from its code. Like the real controller it reads Pods and JobSets from a cache (here the
fake's store, no request) and writes the status with one PUT of /status per reconcile, under
optimistic concurrency; those writes are recorded as requests of ``jobset-controller``.
Changes are coalesced: a burst of Pod patches is one reconcile, after ``delay`` seconds.

The rules, one reconcile of a JobSet whose failurePolicy.restartStrategy is InPlaceRestart
and that has not finished:
1. a container (init or regular, of any associated Pod, Failed ones too) restarted more
   than maxRestarts times: the JobSet fails (ReachedMaxRestarts);
2. the attempts are read from the Pods that are not Failed and carry the annotation; one
   that is not a non-negative integer stops the reconcile (an error, nothing written);
3. the highest attempt, less the restarts that did not count towards the maximum
   (status.restarts - status.restartsCountTowardsMax), above maxRestarts: the JobSet fails;
4. the expected Pod count is the sum of replicas x parallelism; a Job template whose
   completions and parallelism differ (or are unset) stops the reconcile;
5. every expected Pod has an attempt and all are equal: currentInPlaceRestartAttempt is
   that value (the barrier lifts);
6. else, no attempt or all 0: nothing (a JobSet starting);
7. else previousInPlaceRestartAttempt becomes the highest attempt - 1, never lowered (the
   agents at or below it restart their Pods).
"""

import asyncio
import copy
from dataclasses import dataclass, field
from typing import Any

from tests.kube.fake_api import FakeApi
from tests.kube.manifests import running_pod, timestamp
from tests.kube.store import Change, Obj

NAME = "jobset-controller"
ATTEMPT = "jobset.sigs.k8s.io/in-place-restart-attempt"
JOBSET_NAME = "jobset.sigs.k8s.io/jobset-name"
DISABLE = "jobset.sigs.k8s.io/disable-in-place-restart"
"""On a JobSet: the agents lift their barrier at once (the controller does not look)."""
FAILED_REASON = "ReachedMaxRestarts"
FAILED_MESSAGE = "jobset failed due to reaching max number of restarts"


class ReconcileError(Exception):
    """What makes the real controller log, requeue and write nothing."""


@dataclass
class FakeJobSetController:
    api: FakeApi
    delay: float = 0.0
    """Seconds from a change to its reconcile (the real one: a work queue, ~ms)."""
    reconciles: int = 0
    errors: list[str] = field(default_factory=list)
    _pending: set[tuple[str, str]] = field(default_factory=set)
    _loop: asyncio.AbstractEventLoop | None = None
    _task: asyncio.Task[None] | None = None
    _paused: bool = False

    async def start(self) -> None:
        """Listen to the fake's changes (call on the fake's loop) and reconcile every JobSet."""
        self._loop = asyncio.get_running_loop()
        self.api.listen(self._changed)
        for js in self.api.select("jobsets", lambda _: True, self.api.namespace):
            self._enqueue((js["metadata"]["namespace"], js["metadata"]["name"]))

    def pause(self) -> None:
        """Stop reconciling (a controller down); changes wait for `resume`."""
        self._paused = True

    def resume(self) -> None:
        self._paused = False
        if self._pending:
            self._kick()

    def _changed(self, change: Change) -> None:
        """Under the fake's lock, from any thread: only note which JobSet to look at."""
        meta = change.obj["metadata"]
        if change.resource == "jobsets":
            name = meta["name"]
        elif change.resource == "pods" and JOBSET_NAME in (meta.get("labels") or {}):
            name = meta["labels"][JOBSET_NAME]
        else:
            return
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._enqueue, (meta["namespace"], name))

    def _enqueue(self, key: tuple[str, str]) -> None:
        self._pending.add(key)
        if not self._paused:
            self._kick()

    def _kick(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        await asyncio.sleep(self.delay)
        while self._pending and not self._paused:
            key = self._pending.pop()
            self.reconcile(*key)
            await asyncio.sleep(0)

    def reconcile(self, namespace: str, name: str) -> bool:
        """One reconcile; whether it wrote the status."""
        self.reconciles += 1
        js = self.api.get("jobsets", name, namespace)
        if js is None or not _in_place(js) or js.get("status", {}).get("terminalState"):
            return False
        pods = self.api.select("pods", lambda p: _owned(p, name), namespace)
        try:
            status = next_status(js, pods)
        except ReconcileError as exc:
            self.errors.append(f"{namespace}/{name}: {exc}")
            return False
        if status == js.get("status", {}):
            return False
        code, _ = self.api.write(js | {"status": status}, "jobsets/status.update", NAME)
        if code == 409:  # the JobSet changed meanwhile: look again
            self._enqueue((namespace, name))
        return code == 200


def _in_place(js: Obj) -> bool:
    return bool(js["spec"].get("failurePolicy", {}).get("restartStrategy") == "InPlaceRestart")


def _owned(pod: Obj, jobset: str) -> bool:
    return bool((pod["metadata"].get("labels") or {}).get(JOBSET_NAME) == jobset)


def next_status(js: Obj, pods: list[Obj]) -> Obj:
    """The JobSet's status after one reconcile over ``pods`` (rules 1-7 above)."""
    status: Obj = copy.deepcopy(js.get("status", {}))
    max_restarts = js["spec"]["failurePolicy"].get("maxRestarts", 0)
    if max(map(_most_restarts, pods), default=0) > max_restarts:
        return _failed(status)
    attempts = [a for a in map(_attempt, pods) if a is not None]
    uncounted = status.get("restarts", 0) - status.get("restartsCountTowardsMax", 0)
    if max(attempts, default=0) - uncounted > max_restarts:
        return _failed(status)
    if len(attempts) == _expected_pods(js) and len(set(attempts)) == 1:
        status["currentInPlaceRestartAttempt"] = attempts[0]
        return status
    if not attempts or max(attempts) == 0:
        return status
    previous = max(attempts) - 1
    if previous > status.get("previousInPlaceRestartAttempt", -1):
        status["previousInPlaceRestartAttempt"] = previous
    return status


def _most_restarts(pod: Obj) -> int:
    statuses = [
        *pod["status"].get("initContainerStatuses", ()),
        *pod["status"].get("containerStatuses", ()),
    ]
    return max((s.get("restartCount", 0) for s in statuses), default=0)


def _attempt(pod: Obj) -> int | None:
    if pod["status"].get("phase") == "Failed":
        return None
    raw = (pod["metadata"].get("annotations") or {}).get(ATTEMPT)
    if raw is None:
        return None
    if not raw.isdigit():  # Go's Atoi takes a sign; a negative one is refused too
        raise ReconcileError(f"invalid value for annotation {ATTEMPT}: {raw!r}")
    return int(raw)


def _expected_pods(js: Obj) -> int:
    total = 0
    for job in js["spec"]["replicatedJobs"]:
        spec = job["template"].get("spec", {})
        if spec.get("completions") is None or spec.get("completions") != spec.get("parallelism"):
            raise ReconcileError(
                f"{job['name']}: in-place restart needs completions == parallelism"
            )
        total += job.get("replicas", 1) * spec["parallelism"]
    return total


def _failed(status: Obj) -> Obj:
    condition = {
        "type": "Failed",
        "status": "True",
        "reason": FAILED_REASON,
        "message": FAILED_MESSAGE,
        "lastTransitionTime": timestamp(),
    }
    others = [c for c in status.get("conditions", ()) if c["type"] != "Failed"]
    return status | {"conditions": [*others, condition], "terminalState": "Failed"}


def jobset_pod(
    jobset: str, index: int, attempt: int | None = None, restarts: int = 0, **labels: Any
) -> Obj:
    """A running Pod of ``jobset`` (manifests/pod.yaml's spec), optionally annotated."""
    pod = running_pod(f"{jobset}-rj-0-{index}", restarts=restarts)
    pod["metadata"]["labels"] |= {JOBSET_NAME: jobset, **labels}
    if attempt is not None:
        pod["metadata"]["annotations"] = {ATTEMPT: str(attempt)}
    return pod


def in_place_jobset(
    name: str = "js", replicas: int = 2, parallelism: int = 2, max_restarts: int = 3, **status: Any
) -> Obj:
    """A JobSet with the InPlaceRestart strategy, as JobSet's webhook wants it (backoffLimit
    at its maximum, podReplacementPolicy Failed, completions == parallelism)."""
    pod_spec = {"restartPolicy": "Never", "containers": [{"name": "worker", "image": "trainer:1"}]}
    job = {
        "completions": parallelism,
        "parallelism": parallelism,
        "backoffLimit": 2**31 - 1,
        "podReplacementPolicy": "Failed",
        "template": {"spec": pod_spec},
    }
    policy = {"maxRestarts": max_restarts, "restartStrategy": "InPlaceRestart"}
    body: Obj = {
        "apiVersion": "jobset.x-k8s.io/v1alpha2",
        "kind": "JobSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "failurePolicy": policy,
            "replicatedJobs": [{"name": "rj", "replicas": replicas, "template": {"spec": job}}],
        },
    }
    return body | ({"status": status} if status else {})
