"""The Xid catalog: what each Xid number means for an in-place restart, for every reader.

One table for the kernel-log rules (the `xid` pack, `watcher/rules/packs/xid.yaml`, which
a test holds to this catalog number by number) and for the readings that carry a bare
number (NVML Xid events, DCGM's last Xid). Each class has one reason name, whichever
source saw the Xid. `xid_class(n)` is the stable entry point.

Source: NVIDIA's Xid catalog, each code's immediate resolution bucket
(https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html, `Xid-Catalog.xlsx`,
as of October 2025, codes 1-172). RESTART_APP Xids are faults of the program;
RESET_GPU, RESTART_BM, RESTART_VM and the NVLink workflows need the GPU or the node
seen to, which an in-place restart (same GPUs, same node) never does.
"""

from dataclasses import dataclass
from typing import Final

from watcher.types import FaultClass, Severity

# The catalog's immediate resolution buckets, for the codes the classes below use.
RESTART_APP: Final = frozenset(
    {8, 11, 13, 25, 31, 32, 39, 40, 41, 60, 68, 69, 70, 71, 72, 75, 76, 77, 80}
    | {82, 83, 84, 85, 86, 88, 89, 94}
    | set(range(96, 106))
    | set(range(126, 136))
    | {139}
)
RESET_GPU: Final = frozenset({46, 62, 64, 95, 109, 110, 119, 120, 136, 140, 143, 155, 156, 158})
RESTART_BM: Final = frozenset({79})
RESTART_VM: Final = frozenset({151})
CHECK_MECHANICALS: Final = frozenset({54})
WORKFLOW_XID_45: Final = frozenset({45})
WORKFLOW_XID_48: Final = frozenset({48})
WORKFLOW_NVLINK_ERR: Final = frozenset({74})
WORKFLOW_NVLINK5_ERR: Final = frozenset(range(144, 151))
XID_154: Final = frozenset({154})
IGNORE: Final = frozenset({43, 63, 92})
"""Of the IGNORE bucket, the Xids given a class below (context for other Xids, or a
warning); the rest of that bucket is left unlisted."""
DBE_DETAILS: Final = frozenset({171, 172})
"""No bucket of their own: "additional to Xid 48", the DRAM or SRAM particulars."""


@dataclass(frozen=True)
class XidClass:
    """What the Xids of one class mean: one reason, one severity, one fault class."""

    reason: str
    severity: Severity
    fault_class: FaultClass
    meaning: str
    """A few words for the finding's message."""
    xids: frozenset[int]


# fmt: off
FALLEN_OFF_BUS: Final = XidClass(
    "XidGpuFallenOffBus", Severity.FATAL, FaultClass.HARDWARE,
    "the GPU fell off the bus; the node needs a reboot", RESTART_BM,
)
UNCORRECTABLE_MEMORY: Final = XidClass(
    "XidUncorrectableMemoryError", Severity.FATAL, FaultClass.HARDWARE,
    "an uncorrectable memory error; the GPU needs a reset",
    WORKFLOW_XID_48 | {64, 95, 140} | DBE_DETAILS,
)
RESET_REQUIRED: Final = XidClass(
    "XidGpuResetRequired", Severity.FATAL, FaultClass.HARDWARE,
    "the GPU needs a reset or the node a reboot",
    (RESET_GPU - {64, 95, 140}) | CHECK_MECHANICALS | RESTART_VM,
)
NVLINK: Final = XidClass(
    "XidNvlinkError", Severity.FATAL, FaultClass.HARDWARE,
    "an NVLink error; the GPU needs a reset", WORKFLOW_NVLINK_ERR | WORKFLOW_NVLINK5_ERR,
)
RECOVERY_ACTION: Final = XidClass(
    "XidRecoveryActionRequired", Severity.FATAL, FaultClass.HARDWARE,
    "the driver set a recovery action for the GPU", XID_154,
)
CONTAINED_MEMORY: Final = XidClass(
    "XidContainedMemoryError", Severity.FATAL, FaultClass.TRANSIENT,
    "a memory error contained to the process that hit it; restart it", frozenset({94}),
)
NVLINK_NONFATAL: Final = XidClass(
    "XidNvlinkNonfatal", Severity.WARNING, FaultClass.HARDWARE,
    "an NVLink5 error the driver marks non-fatal", frozenset(),
)
"""Only from a kernel line, which says Fatal or not (see `LINE_REFINEMENTS`)."""
ROW_REMAP: Final = XidClass(
    "XidRowRemapPending", Severity.WARNING, FaultClass.HARDWARE,
    "a row remap was recorded; it applies at the next GPU reset", IGNORE & {63},
)
HIGH_SBE_RATE: Final = XidClass(
    "XidHighSbeRate", Severity.WARNING, FaultClass.HARDWARE,
    "a high rate of corrected single-bit ECC errors", IGNORE & {92},
)
APPLICATION: Final = XidClass(
    "XidApplicationFault", Severity.WARNING, FaultClass.APPLICATION,
    "a fault of the program (its own error line is the better trigger)", RESTART_APP - {94},
)
TEARDOWN: Final = XidClass(
    "XidChannelTeardown", Severity.INFO, FaultClass.APPLICATION,
    "clean-up after a fault or a killed process", (IGNORE & {43}) | WORKFLOW_XID_45,
)
UNLISTED: Final = XidClass(
    "XidUnlisted", Severity.WARNING, FaultClass.HARDWARE,
    "not in the catalog's action classes", frozenset(),
)
"""A bare number in no class: reported, never acted on. The `xid` pack has no rule for
these: a kernel line of an unlisted Xid matches nothing."""

CLASSES: Final = (
    FALLEN_OFF_BUS, UNCORRECTABLE_MEMORY, RESET_REQUIRED, NVLINK, RECOVERY_ACTION,
    CONTAINED_MEMORY, NVLINK_NONFATAL, ROW_REMAP, HIGH_SBE_RATE, APPLICATION, TEARDOWN,
)
"""Every class but UNLISTED: the `xid` pack has one rule for each."""

LINE_REFINEMENTS: Final = (
    (WORKFLOW_NVLINK5_ERR, "NETIR_LINK_EVT Nonfatal XC0 i0 Link 08", NVLINK_NONFATAL),
    (frozenset({94}), "Contained: SM (0x1). RST: Yes, D-RST: No", UNCORRECTABLE_MEMORY),
    (frozenset({94}), "Contained: SM (0x1). RST: No, D-RST: Yes", UNCORRECTABLE_MEMORY),
    (XID_154, "GPU recovery action changed from 0x1 (GPU Reset Required) to 0x0 (None)", None),
)
"""Where a kernel line's text says more than its number: (Xids, text, class or None for
nothing to report). NVLink5 Xids decode per unit (the catalog's "XID 144-150 Decode"
sheet), and only a line says Fatal; a 94 that needs a reset (RST or D-RST: Yes) is not
contained; a 154 back to None asks for nothing."""
# fmt: on

_BY_XID: Final = {xid: c for c in CLASSES for xid in c.xids}


def xid_class(xid: int) -> XidClass:
    """The class of a bare Xid number (an NVML event, DCGM's last Xid); UNLISTED for a
    number in no class. Stable: other packages read Xids through this."""
    return _BY_XID.get(xid, UNLISTED)


def xid_message(xid: int) -> str:
    """`Xid 79: the GPU fell off the bus; ...`, as every GPU finding words an Xid."""
    return f"Xid {xid}: {xid_class(xid).meaning}"
