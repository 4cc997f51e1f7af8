"""What any GPU backend reads, in one shape: a reading per GPU, or a failure of the tool.

Every backend (NVML, nvidia-smi CSV / -q / -q -x, dcgm-exporter metrics, dcgmi health)
turns its output into these; `classification/` alone decides what they mean. A field is
None when the source does not say (unsupported, `[N/A]`, not in this format).
"""

from dataclasses import dataclass, field
from enum import StrEnum


def normalize_bus_id(bus_id: str | None) -> str | None:
    """`00000000:3B:00.0` (nvidia-smi), `0000:3b:00` (kernel), `3b:00.0` -> `0000:3b:00`."""
    if not bus_id:
        return None
    text = bus_id.strip().lower().removeprefix("pci:")
    parts = text.split(":")
    if len(parts) == 2:  # bus:device.function
        parts = ["0000", *parts]
    if len(parts) != 3:
        return text
    domain, bus, device = parts
    return f"{domain[-4:].rjust(4, '0')}:{bus.rjust(2, '0')}:{device.split('.')[0].rjust(2, '0')}"


@dataclass(frozen=True, slots=True)
class GpuId:
    """Which GPU: by UUID or PCI bus id, never by index (indices change between boots)."""

    uuid: str | None = None
    bus_id: str | None = None
    """Normalized with `normalize_bus_id`."""
    index: int | None = None
    """For people only."""

    @property
    def key(self) -> str:
        return self.uuid or self.bus_id or f"index {self.index}"

    def label(self) -> str:
        parts = [p for p in (self.uuid, self.bus_id) if p]
        return " ".join(parts) or f"GPU index {self.index}"


class Recovery(StrEnum):
    """The driver's recommended recovery action (gpu_recovery_action, NVML field 230)."""

    NONE = "none"
    GPU_RESET = "gpu_reset"
    NODE_REBOOT = "node_reboot"
    DRAIN_P2P = "drain_p2p"
    DRAIN_AND_RESET = "drain_and_reset"
    OTHER = "other"
    """Any other non-None action (IMEX domain, bus reset, system reboot)."""


@dataclass(frozen=True)
class GpuReading:
    """One GPU as one backend saw it at one moment."""

    gpu: GpuId
    name: str | None = None
    lost: bool = False
    """The GPU is gone: fell off the bus, `[GPU is lost]`, NVMLError_GpuIsLost."""
    reset_required: bool = False
    """`[GPU requires reset]`, NVMLError_ResetRequired, the 535-era Reset Required flag."""
    ecc_uncorrected_volatile: int | None = None
    """Uncorrectable ECC errors since the driver loaded (fires on increase)."""
    remapped_rows_pending: bool | None = None
    remapped_rows_failure: bool | None = None
    retired_pages_pending: bool | None = None
    recovery_action: Recovery | None = None
    xid: int | None = None
    """The last Xid the source reports (DCGM keeps the last one; fires on change)."""
    pcie_replays: int | None = None
    thermal_slowdown: bool | None = None
    health: dict[str, str] = field(default_factory=dict)
    """dcgmi health per system: {"PCIe system": "Warning", ...}."""
    odd_fields: tuple[str, ...] = ()
    """Cells that read `[Unknown Error]` or `ERR!`: reported, never fatal alone."""


class ToolProblem(StrEnum):
    """Why a backend could not read any GPU."""

    DRIVER_NOT_LOADED = "driver_not_loaded"
    LIBRARY_NOT_FOUND = "library_not_found"
    VERSION_MISMATCH = "version_mismatch"
    GPU_LOST = "gpu_lost"
    """The tool itself says a GPU fell off the bus (nvidia-smi exit 15)."""
    NO_DEVICES = "no_devices"
    """The tool sees no GPU at all (`No devices were found`), or NVML not this UUID."""
    NOT_LISTED = "not_listed"
    """The source answered, but does not list one of this Pod's GPUs (another Pod's series
    on dcgm-exporter, a UUID missing from a poll that read others)."""
    NO_BACKEND = "no_backend"
    """No backend works here (`auto` found neither NVML nor nvidia-smi) on a Pod with GPUs."""
    RELAY_DOWN = "relay_down"
    """The launcher runs the trainer but its GPU relay does not (it died, or never started)."""
    RELAY_STALE = "relay_stale"
    """The GPU relay holds its lock but has not reported for longer than it should."""
    TIMED_OUT = "timed_out"
    FAILED = "failed"
    """Anything else: an exit code or error we do not know, garbage output."""


@dataclass(frozen=True)
class ToolFailure:
    problem: ToolProblem
    detail: str
    """What was seen: the exit code and the first line of output, the exception."""
    gpu: GpuId | None = None


@dataclass(frozen=True)
class Snapshot:
    """Everything one poll of one backend saw."""

    source: str
    """`nvml`, `nvidia-smi`, `dcgm`..."""
    readings: tuple[GpuReading, ...] = ()
    failures: tuple[ToolFailure, ...] = ()
