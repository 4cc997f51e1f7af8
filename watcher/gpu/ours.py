"""Which GPUs are this Pod's: the one place that says so, for every backend and event.

`our_uuids` reads the configuration (`WATCHER_GPU_UUIDS`, else `NVIDIA_VISIBLE_DEVICES`
when it lists `GPU-` UUIDs: not `all`, `void`, indices or MIG devices). `Whose` holds what
is known (the UUIDs, the Pod's name) and matches one GPU against it; a source that sees
the whole node (dcgm-exporter) applies it where it reads, since only it has the `pod`
labels. `OurGpus` keeps a poll's readings to ours, says when one of ours is missing, and
answers whether a PCI bus id (from a kernel Xid line) is one of ours.
"""

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from watcher.gpu.model import GpuId, GpuReading, Snapshot, ToolFailure, ToolProblem
from watcher.gpu.model import normalize_bus_id as bus_of


def our_uuids(configured: Sequence[str], environ: Mapping[str, str]) -> tuple[str, ...] | None:
    """The UUIDs of this Pod's GPUs, or None: every GPU the backend sees."""
    if configured:
        return tuple(configured)
    visible = [v.strip() for v in environ.get("NVIDIA_VISIBLE_DEVICES", "").split(",")]
    visible = [v for v in visible if v]
    if visible and all(v.upper().startswith("GPU-") for v in visible):
        return tuple(visible)
    return None


@dataclass(frozen=True)
class Whose:
    """What tells this Pod's GPUs from the others: their UUIDs, or the Pod's name as
    dcgm-exporter labels the series of the GPUs a Pod uses (its `--kubernetes` mapping)."""

    uuids: tuple[str, ...] | None = None
    pod: tuple[str | None, str] | None = None
    """(namespace, or None for any, and name) of this Pod."""

    def known(self) -> bool:
        return bool(self.uuids) or self.pod is not None

    def matches(self, gpu: GpuId, pods: Collection[tuple[str, str]] = ()) -> bool:
        """Whether ``gpu`` (used by the (namespace, name) ``pods``) is one of ours. Known
        UUIDs decide alone; the Pod's name only while there are none."""
        if self.uuids:
            return (gpu.uuid or "").lower() in {u.lower() for u in self.uuids}
        if self.pod is None:
            return False
        namespace, name = self.pod
        return any(p == name and namespace in (None, n) for n, p in pods)

    def describe(self) -> str:
        parts = list(self.uuids or ())
        if self.pod is not None:
            parts.append("/".join(p for p in self.pod if p))
        return ", ".join(parts)


NOBODY = "cannot tell this Pod's GPUs among the node's: set WATCHER_GPU_UUIDS or WATCHER_POD_NAME"


@dataclass
class OurGpus:
    """Keeps only this Pod's GPUs in each snapshot, says when one of them is missing, and
    answers whether a PCI bus id (from a kernel Xid line) is one of ours.

    A GPU that nvidia-smi cannot open is named by its bus id only: it is kept when that
    bus id belonged to one of ours, or is unknown while one of ours is missing."""

    uuids: tuple[str, ...] | None
    _ours: dict[str, str] = field(default_factory=dict)
    """UUID (lower case) -> bus id, for each of ours seen with both."""
    _theirs: set[str] = field(default_factory=set)
    _seen: set[str] = field(default_factory=set)
    """Without UUIDs (every GPU we see is ours): the bus ids seen so far."""
    _complete: bool = False
    """The last poll named every GPU it listed by bus id, and all of ours were among them
    (or seen before): a bus id we do not know is then another Pod's GPU."""

    def keep(self, snapshot: Snapshot) -> Snapshot:
        """A poll: learn which bus ids are ours from it, then keep only ours."""
        if self.uuids is None:
            self._seen |= {r.gpu.bus_id for r in snapshot.readings if r.gpu.bus_id}
            self._complete = bool(snapshot.readings) and _all_named(snapshot)
            return snapshot
        wanted = {u.lower() for u in self.uuids}
        self._learn(snapshot.readings, wanted)
        self._complete = wanted <= set(self._ours) and _all_named(snapshot)
        return self._filter(snapshot)

    def admits(self, reading: GpuReading) -> bool:
        """Whether an event's reading is about one of ours. Learns nothing: one event
        does not say which GPUs a poll would list."""
        if self.uuids is None:
            return True
        return bool(self._filter(Snapshot("event", (reading,))).readings)

    def owns(self, bus_id: str) -> bool | None:
        """True for one of ours; False for another Pod's GPU; None while we cannot tell
        (no poll yet, one of ours never seen, a GPU listed without its bus id)."""
        bus = bus_of(bus_id)
        ours = self._seen if self.uuids is None else set(self._ours.values())
        if bus in ours:
            return True
        return False if self._complete else None

    def _filter(self, snapshot: Snapshot) -> Snapshot:
        assert self.uuids is not None
        seen = {r.gpu.uuid.lower() for r in snapshot.readings if r.gpu.uuid}
        seen |= {f.gpu.uuid.lower() for f in snapshot.failures if f.gpu and f.gpu.uuid}
        missing = sorted(u for u in self.uuids if u.lower() not in seen)
        buses = set(self._ours.values())
        if missing:
            buses |= {b for b in _bus_only(snapshot.readings) if b not in self._theirs}
        kept = keep_gpus(snapshot, self.uuids, buses)
        if missing and snapshot.readings and not _bus_only(kept.readings):
            detail = f"{', '.join(missing)}: not among the GPUs {snapshot.source} sees"
            note = ToolFailure(ToolProblem.NOT_LISTED, detail)
            return Snapshot(kept.source, kept.readings, (*kept.failures, note))
        return kept

    def _learn(self, readings: Sequence[GpuReading], wanted: set[str]) -> None:
        for reading in readings:
            uuid, bus = reading.gpu.uuid, reading.gpu.bus_id
            if uuid and bus:
                if uuid.lower() in wanted:
                    self._ours[uuid.lower()] = bus
                else:
                    self._theirs.add(bus)


def keep_gpus(snapshot: Snapshot, uuids: Iterable[str], bus_ids: Iterable[str]) -> Snapshot:
    """Only the readings (and GPU-specific failures) of the given GPUs, by UUID or by PCI
    bus id in any spelling; tool failures about no GPU in particular are kept."""
    want_uuids = {u.strip().lower() for u in uuids}
    want_buses = {bus_of(b) for b in bus_ids} - {None}

    def mine(gpu: GpuId) -> bool:
        if gpu.uuid and gpu.uuid.lower() in want_uuids:
            return True
        return gpu.bus_id is not None and gpu.bus_id in want_buses

    return Snapshot(
        snapshot.source,
        readings=tuple(r for r in snapshot.readings if mine(r.gpu)),
        failures=tuple(f for f in snapshot.failures if f.gpu is None or mine(f.gpu)),
    )


def _all_named(snapshot: Snapshot) -> bool:
    """Every GPU the poll listed has a bus id (a GPU lost by index only has none)."""
    return all(r.gpu.bus_id for r in snapshot.readings)


def _bus_only(readings: Sequence[GpuReading]) -> set[str]:
    return {r.gpu.bus_id for r in readings if r.gpu.bus_id and not r.gpu.uuid}
