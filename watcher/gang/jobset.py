"""pod-watcher as the in-place restart agent of a JobSet (JobSet v0.12.0, sidecar mode;
the contract is in docs/gang.md §2-3).

Its attempt is ``current + 1`` (0 while the JobSet has none), written on its own Pod's
annotation at first sight by a merge patch whose answer doubles as the Pod read; it
restarts when ``previous`` reaches its attempt and lifts the barrier when ``current``
equals it. The opt-out annotation or another strategy lifts the barrier at once."""

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from watcher.gang.coordinator import Edge
from watcher.gang.reasons import gang_key
from watcher.kube.client import KubeApi
from watcher.kube.watch import Obj, ObjectWatch, WatchConfig, jobset

ATTEMPT = "jobset.sigs.k8s.io/in-place-restart-attempt"
DISABLE = "jobset.sigs.k8s.io/disable-in-place-restart"
IN_PLACE = "InPlaceRestart"


@dataclass(frozen=True)
class Reading:
    """What an agent reads of a JobSet."""

    bypass: bool
    current: int | None
    previous: int | None


def read_jobset(obj: Obj | None) -> Reading:
    """A missing JobSet reads as "no in-place restart" (bypass): nothing to coordinate."""
    if obj is None:
        return Reading(True, None, None)
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    strategy = ((obj.get("spec") or {}).get("failurePolicy") or {}).get("restartStrategy")
    status = obj.get("status") or {}
    return Reading(
        DISABLE in annotations or strategy != IN_PLACE,
        _count(status.get("currentInPlaceRestartAttempt")),
        _count(status.get("previousInPlaceRestartAttempt")),
    )


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and value >= 0 else None


def first_attempt(reading: Reading) -> int:
    return 0 if reading.current is None else reading.current + 1


def jobset_edge(reading: Reading, own: int) -> Edge | None:
    if reading.bypass:
        return Edge("lifted", own, "the JobSet does not restart in place: no barrier")
    if reading.previous is not None and own <= reading.previous:
        why = f"the JobSet's previous attempt {reading.previous} reached this Pod's {own}"
        return Edge("restart", reading.previous + 1, why)
    if reading.current == own:
        return Edge("lifted", own, f"every Pod of the JobSet reached attempt {own}")
    return None


class JobSetCoordinator:
    def __init__(
        self, api: KubeApi, name: str, config: WatchConfig, resume: int | None = None
    ) -> None:
        """``resume``: the attempt this Pod's last restart wrote early (from the ledger)."""
        self._api = api
        self._resume = resume
        self.key = gang_key("jobset", api.pod.namespace, name)
        self.watch = ObjectWatch(api.api_client, jobset(api.pod.namespace, name), config)
        self.own: int | None = None

    async def join(self, obj: Obj | None) -> dict[str, Any] | None:
        reading = read_jobset(obj)
        attempt = first_attempt(reading)
        if self._resume is not None and self._resume == reading.current:
            attempt = self._resume  # the gang completed with this Pod's early write
        if reading.bypass:
            self.own = attempt
            return None
        pod = await self._api.annotate({ATTEMPT: str(attempt)})
        self.own = attempt
        return pod

    def edge(self, obj: Obj | None) -> Edge | None:
        return None if self.own is None else jobset_edge(read_jobset(obj), self.own)

    def _latest(self) -> Reading:
        latest = self.watch.latest
        return read_jobset(None if latest is None else latest.obj)

    def next_generation(self) -> int | None:
        if self.own is None:
            return None
        current = self._latest().current
        return max(self.own, -1 if current is None else current) + 1

    def early_annotations(self) -> Mapping[str, str]:
        """The next attempt: the controller moves ``previous`` while this Pod restarts."""
        if self.own is None or self._latest().bypass:
            return {}
        return {ATTEMPT: str(self.next_generation())}

    async def early_write(self) -> None:
        """Nothing beyond the annotation."""

    async def background(self) -> None:
        await asyncio.Event().wait()
