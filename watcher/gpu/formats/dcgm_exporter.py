"""dcgm-exporter's `/metrics` (Prometheus text) -> Snapshot, one reading per GPU UUID.

Public:

* `parse_exporter(text) -> Snapshot`: a reading of every GPU of the node.
* `read_exporter(text) -> (list[ExporterGpu], failures)`: each GPU with the
  (namespace, pod) pairs its series were labelled with (dcgm-exporter `-k` mapping), for
  `watcher.gpu.ours.Whose` to tell this Pod's.
* `is_blank(value) -> bool`: DCGM's "no data" sentinels (>= 0x7ffffffffffffff0, the
  int32 blanks 0x7ffffff0..0x7fffffff, NaN, infinities, negatives).

Series are keyed by the `UUID` label (`uuid` with `--use-old-namespace`); the bus id comes
from `pci_bus_id`, the name from `modelName`. Read: DCGM_FI_DEV_XID_ERRORS (or the newer
DCGM_FI_DEV_XID_ERROR: the last Xid), DCGM_FI_DEV_ECC_DBE_VOL_TOTAL,
DCGM_FI_DEV_ROW_REMAP_FAILURE / _FAILED, DCGM_FI_DEV_ROW_REMAP_PENDING,
DCGM_FI_DEV_RETIRED_PENDING, DCGM_FI_DEV_PCIE_REPLAY_COUNTER,
DCGM_FI_DEV_GPU_RECOVERY_ACTION (0 none, 1 GPU reset, 2 node reboot, 3 drain P2P, 4 drain
and reset, others: other), DCGM_EXP_GPU_HEALTH_STATUS (per `health_watch`: 0 Healthy, 10
Warning, 20 Failure). Several series of one GPU (MIG instances, Pods sharing it) are merged
by taking the largest value. Lines that are not metrics (`Handling connection for 9400`
pasted by kubectl port-forward) are skipped. Never raises.
"""

import math
from dataclasses import dataclass, field
from typing import Final

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from watcher.gpu.formats.common import (
    PARSER_ERROR,
    Text,
    as_text,
    failure,
    too_large,
    unrecognized,
)
from watcher.gpu.model import GpuId, GpuReading, Recovery, Snapshot, ToolFailure, ToolProblem
from watcher.gpu.model import normalize_bus_id as bus

SOURCE: Final = "dcgm"
BLANK64: Final = 0x7FFFFFFFFFFFFFF0
BLANK32: Final = range(0x7FFFFFF0, 0x80000000)

_FIELDS: Final = {
    "DCGM_FI_DEV_XID_ERRORS": "xid",
    "DCGM_FI_DEV_XID_ERROR": "xid",
    "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": "ecc",
    "DCGM_FI_DEV_ROW_REMAP_FAILURE": "remap_failure",
    "DCGM_FI_DEV_ROW_REMAP_FAILED": "remap_failure",
    "DCGM_FI_DEV_ROW_REMAP_PENDING": "remap_pending",
    "DCGM_FI_DEV_RETIRED_PENDING": "retired_pending",
    "DCGM_FI_DEV_PCIE_REPLAY_COUNTER": "pcie",
    "DCGM_FI_DEV_GPU_RECOVERY_ACTION": "recovery",
}
HEALTH: Final = "DCGM_EXP_GPU_HEALTH_STATUS"
_WANTED: Final = frozenset({*_FIELDS, HEALTH})
_HEALTH_STATES: Final = {0: "Healthy", 10: "Warning", 20: "Failure"}
_RECOVERY: Final = (
    Recovery.NONE,
    Recovery.GPU_RESET,
    Recovery.NODE_REBOOT,
    Recovery.DRAIN_P2P,
    Recovery.DRAIN_AND_RESET,
)


@dataclass(frozen=True)
class ExporterGpu:
    reading: GpuReading
    pods: frozenset[tuple[str, str]] = frozenset()
    """(namespace, pod) of the Pods the exporter mapped this GPU to."""


@dataclass
class _Gpu:
    labels: dict[str, str]
    values: dict[str, float] = field(default_factory=dict)
    health: dict[str, float] = field(default_factory=dict)
    pods: set[tuple[str, str]] = field(default_factory=set)


def is_blank(value: float) -> bool:
    if math.isnan(value) or math.isinf(value) or value < 0:
        return True
    return value >= BLANK64 or int(value) in BLANK32


def parse_exporter(text: Text) -> Snapshot:
    gpus, failures = read_exporter(text)
    return Snapshot(SOURCE, readings=tuple(g.reading for g in gpus), failures=failures)


def read_exporter(text: Text) -> tuple[list[ExporterGpu], tuple[ToolFailure, ...]]:
    try:
        return _read(as_text(text))
    except Exception as exc:  # garbage in must not crash the watcher
        return [], failure(SOURCE, ToolProblem.FAILED, f"{PARSER_ERROR}: {exc!r}").failures


def _read(raw: str) -> tuple[list[ExporterGpu], tuple[ToolFailure, ...]]:
    refused = too_large(SOURCE, raw)
    if refused:
        return [], refused.failures
    # Parsing only the series we read is 10x cheaper on a full exporter page; the
    # whole text is the fallback when none of them names a GPU.
    gpus = _gpus(_samples(_wanted(raw)))
    samples = [] if gpus else _samples(raw)
    if not gpus and not samples:
        return [], unrecognized(SOURCE, raw, "Prometheus metrics").failures
    gpus = gpus or _gpus(samples)
    if not gpus:
        detail = "no GPU series (with a UUID label) in the exporter's metrics"
        return [], (ToolFailure(ToolProblem.NOT_LISTED, detail),)
    return [_gpu(uuid, gpu) for uuid, gpu in gpus.items()], ()


def _gpus(samples: list[Sample]) -> dict[str, _Gpu]:
    gpus: dict[str, _Gpu] = {}
    for sample in samples:
        uuid = sample.labels.get("UUID") or sample.labels.get("uuid")
        if uuid:
            _add(gpus.setdefault(uuid, _Gpu(dict(sample.labels))), sample)
    return gpus


def _wanted(raw: str) -> str:
    """The lines of the series this parser reads (their samples, HELP and TYPE)."""
    kept = []
    for line in raw.splitlines():
        name = line.split(None, 3)[2] if line.startswith("# ") and line.count(" ") >= 2 else line
        name = name.split("{", 1)[0].split(" ", 1)[0].removesuffix("_total")
        if name in _WANTED:
            kept.append(line)
    return "\n".join(kept) + "\n"


def _samples(raw: str) -> list[Sample]:
    """All samples; when the text as a whole does not parse, line by line, skipping the
    lines that do not."""
    try:
        return [s for family in text_string_to_metric_families(raw) for s in family.samples]
    except Exception:  # one bad line spoils the whole text for the parser
        pass
    samples = []
    for line in raw.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            samples += [s for f in text_string_to_metric_families(line + "\n") for s in f.samples]
        except Exception:
            continue
    return samples


def _add(gpu: _Gpu, sample: Sample) -> None:
    labels, value = sample.labels, float(sample.value)
    if labels.get("pod"):
        gpu.pods.add((labels.get("namespace", ""), labels["pod"]))
    if is_blank(value):
        return
    # The parser appends `_total` to the samples of a family typed `counter`.
    metric = sample.name.removesuffix("_total")
    if metric == HEALTH:
        watch = labels.get("health_watch") or "health"
        gpu.health[watch] = max(value, gpu.health.get(watch, value))
        return
    name = _FIELDS.get(metric)
    if name is not None:
        gpu.values[name] = max(value, gpu.values.get(name, value))


def _gpu(uuid: str, gpu: _Gpu) -> ExporterGpu:
    values, labels = gpu.values, gpu.labels

    def number(name: str) -> int | None:
        return int(values[name]) if name in values else None

    def flag(name: str) -> bool | None:
        return values[name] > 0 if name in values else None

    index = labels.get("gpu", "")
    action = number("recovery")
    reading = GpuReading(
        gpu=GpuId(uuid=uuid, bus_id=bus(labels.get("pci_bus_id")), index=_int(index)),
        name=labels.get("modelName") or None,
        ecc_uncorrected_volatile=number("ecc"),
        remapped_rows_pending=flag("remap_pending"),
        remapped_rows_failure=flag("remap_failure"),
        retired_pages_pending=flag("retired_pending"),
        recovery_action=None if action is None else _recovery(action),
        xid=number("xid"),
        pcie_replays=number("pcie"),
        health={w: _HEALTH_STATES.get(int(v), f"state {int(v)}") for w, v in gpu.health.items()},
    )
    return ExporterGpu(reading, frozenset(gpu.pods))


def _recovery(action: int) -> Recovery:
    return _RECOVERY[action] if 0 <= action < len(_RECOVERY) else Recovery.OTHER


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None
