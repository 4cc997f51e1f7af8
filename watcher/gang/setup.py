"""The gang monitor, built from the settings and the API client (None when off)."""

from collections.abc import Mapping

from watcher.clock import Clock
from watcher.config.gang import GangSettings, gang_index
from watcher.gang.coordinator import Coordinator
from watcher.gang.jobset import JobSetCoordinator
from watcher.gang.lease import LeaseCoordinator
from watcher.gang.monitor import GangMonitor
from watcher.gang.reasons import FOLLOW, GANG_KEY, GENERATION, gang_key
from watcher.kube.client import KubeApi
from watcher.kube.watch import WatchConfig
from watcher.state.ledger import LedgerEntry


def build_gang(
    settings: GangSettings,
    api: KubeApi | None,
    clock: Clock,
    environ: Mapping[str, str],
    last_restart: LedgerEntry | None = None,
) -> GangMonitor | None:
    """``last_restart``: the restart this start follows, if the watcher asked for it."""
    if settings.gang == "off" or api is None or settings.gang_name is None:
        return None
    config = WatchConfig(api_timeout=api.timeout)
    coordinator: Coordinator
    if settings.gang == "jobset":
        resume = _early(last_restart, gang_key("jobset", api.pod.namespace, settings.gang_name))
        coordinator = JobSetCoordinator(api, settings.gang_name, config, resume)
    else:
        assert settings.gang_size is not None  # the settings' validation
        index = gang_index(settings, environ)
        coordinator = LeaseCoordinator(
            api,
            settings.gang_name,
            config,
            size=settings.gang_size,
            aggregate=settings.selector() if index == 0 else None,
            resume=_early(last_restart, gang_key("lease", api.pod.namespace, settings.gang_name)),
        )
    return GangMonitor(coordinator, clock, barrier_timeout=settings.gang_barrier_timeout)


def _early(entry: LedgerEntry | None, key: str) -> int | None:
    """The generation a restart this Pod decided moved the gang to (its early write)."""
    if entry is None or entry.details.get(FOLLOW) or entry.details.get(GANG_KEY) != key:
        return None
    generation = entry.details.get(GENERATION)
    return generation if isinstance(generation, int) else None
