"""The standalone gang (docs/gang.md §4): a restart generation G on a Lease, no JobSet.

Each watcher takes g := G at its start and writes `pod-watcher/generation: g` on its own
Pod (its arrival; the answer doubles as the Pod read). It restarts when G moves past g,
and lifts its barrier when the Lease's `pod-watcher/barrier-generation` equals g, which
the aggregator (the watcher of index 0, `arrivals.py`) writes once N Pods arrived. A
watcher that decides to restart bumps G (one PUT under optimistic concurrency)."""

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from watcher.gang.arrivals import ARRIVAL, BARRIER, Aggregator, barrier_of
from watcher.gang.coordinator import Edge
from watcher.gang.reasons import gang_key
from watcher.kube.client import ApiError, KubeApi
from watcher.kube.generation import bump_generation, generation_of
from watcher.kube.watch import Obj, ObjectWatch, WatchConfig, lease

log = logging.getLogger(__name__)


def lease_edge(obj: Obj | None, own: int) -> Edge | None:
    generation = generation_of(obj)
    if generation > own:
        return Edge("restart", generation, f"the gang's generation {generation} moved past {own}")
    if barrier_of(obj) == own:
        return Edge("lifted", own, f"every Pod of the gang reached generation {own}")
    return None


class LeaseCoordinator:
    def __init__(
        self,
        api: KubeApi,
        name: str,
        config: WatchConfig,
        *,
        size: int,
        aggregate: str | None,
        resume: int | None = None,
    ) -> None:
        """``aggregate``: the label selector of the gang's Pods, for the aggregator;
        ``resume``: the generation this Pod's last restart moved the gang to (ledger)."""
        self._api = api
        self._resume = resume
        self._ref = lease(api.pod.namespace, name)
        self.key = gang_key("lease", api.pod.namespace, name)
        self.watch = ObjectWatch(api.api_client, self._ref, config)
        self.own: int | None = None
        self._config = config
        self.aggregator = (
            None
            if aggregate is None
            else Aggregator(
                api.api_client, self._ref, self.watch, selector=aggregate, size=size, config=config
            )
        )

    async def join(self, obj: Obj | None) -> dict[str, Any] | None:
        generation = generation_of(obj)
        if self._resume == generation + 1:  # the early bump did not happen: bump now
            bump = await bump_generation(
                self._api.api_client, self._ref, generation, latest=obj,
                api_timeout=self._config.api_timeout,
            )  # fmt: skip
            generation = bump.generation
        pod = await self._api.annotate({ARRIVAL: str(generation)})
        self.own = generation
        return pod

    def edge(self, obj: Obj | None) -> Edge | None:
        if self.aggregator is not None:
            self.aggregator.lease_changed()
        return None if self.own is None else lease_edge(obj, self.own)

    def next_generation(self) -> int | None:
        return None if self.own is None else self.own + 1

    def early_annotations(self) -> Mapping[str, str]:
        return {}

    async def early_write(self) -> None:
        if self.own is None:
            return
        latest = self.watch.latest
        try:
            bump = await bump_generation(
                self._api.api_client,
                self._ref,
                self.own,
                latest=None if latest is None else latest.obj,
                api_timeout=self._config.api_timeout,
            )
        except ApiError as exc:
            log.error("gang: cannot bump the generation: %s", exc)
            return
        log.info("gang: generation %d (%s)", bump.generation, "bumped" if bump.wrote else "moved")

    async def background(self) -> None:
        if self.aggregator is None:
            await asyncio.Event().wait()
        else:
            await self.aggregator.run()


__all__ = ["ARRIVAL", "BARRIER", "LeaseCoordinator", "lease_edge"]
