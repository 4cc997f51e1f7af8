"""Xid numbers by what they mean for an in-place restart, after NVIDIA's Xid catalog.

The same classes as the `xid` rule pack (which reads them from kernel log lines); these
tables serve the readings that carry a bare number (NVML events, DCGM's last Xid).
"""

from typing import Final

from watcher.types import FaultClass, Severity

APPLICATION: Final = frozenset(
    {8, 11, 13, 25, 31, 32, 39, 40, 41, 60, 68, 69, 70, 71, 72, 75, 76, 77, 80, 82}
    | set(range(83, 90))
    | set(range(96, 106))
    | set(range(126, 136))
    | {139}
)
"""RESTART_APP class: a fault of the program; its own error line is the better trigger."""

CLEANUP: Final = frozenset({43, 45})
"""Follow a fault or a killed process."""

HARDWARE: Final = frozenset(
    {46, 48, 54, 62, 64, 74, 79, 95, 109, 110, 119, 120, 136, 140, 143, 151, 154, 155, 156}
    | {158, 171, 172}
    | set(range(144, 151))
)
"""RESET_GPU, RESTART_BM, RESTART_VM and NVLink classes: restarting in place cannot help.
(NVLink5 144-150 are not all fatal; a bare number carries no verdict, so they count.)"""

CONTAINED: Final = frozenset({94})
"""Contained ECC error: only the app that hit it is affected; restart it."""

WATCH_ONLY: Final = frozenset({63, 92})
"""A remap recorded (63), a high corrected-error rate (92): warnings."""


def xid_verdict(xid: int) -> tuple[Severity, FaultClass, str]:
    """Severity, fault class and a few words for one Xid number."""
    if xid in HARDWARE:
        return Severity.FATAL, FaultClass.HARDWARE, "needs a GPU reset or a node reboot"
    if xid in CONTAINED:
        return Severity.FATAL, FaultClass.TRANSIENT, "contained ECC error, restart the app"
    if xid in APPLICATION:
        return Severity.WARNING, FaultClass.APPLICATION, "an application fault"
    if xid in CLEANUP:
        return Severity.INFO, FaultClass.APPLICATION, "clean-up after a fault or a kill"
    if xid in WATCH_ONLY:
        return Severity.WARNING, FaultClass.HARDWARE, "worth watching, not a fault alone"
    return Severity.WARNING, FaultClass.HARDWARE, "not in the catalog's action classes"
