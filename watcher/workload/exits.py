"""What the workload's exit says: a reason and a line for each code and signal.

An exit is a fact; what it leads to is the policy's business. Only one thing is said
here about consequences: exit 0 is a finished job (info). Codes that no restart can mend
(the command could not be run at all, or the user listed the code as final) get reasons
of their own, which the policy answers with ``fail``.
"""

import signal
from collections.abc import Collection
from dataclasses import dataclass

from watcher.types import WORKLOAD_CANNOT_START, WORKLOAD_GAVE_UP, FaultClass, Severity

SHELL_SIGNAL_BASE = 128
CANNOT_RUN = {126: "the command is not executable", 127: "the command was not found"}

_SIGNALS: dict[int, tuple[str, str]] = {
    signal.SIGKILL: (
        "WorkloadKilled",
        "killed by SIGKILL: the kernel's OOM killer (the container's memory limit) or a kill "
        "from outside",
    ),
    signal.SIGSEGV: ("WorkloadCrashed", "crashed with a segmentation fault (SIGSEGV)"),
    signal.SIGBUS: ("WorkloadCrashed", "crashed with a bus error (SIGBUS, often /dev/shm full)"),
    signal.SIGILL: ("WorkloadCrashed", "crashed on an illegal instruction (SIGILL)"),
    signal.SIGFPE: ("WorkloadCrashed", "crashed on an arithmetic fault (SIGFPE)"),
    signal.SIGABRT: (
        "WorkloadAborted",
        "aborted (SIGABRT): an assertion, `terminate called`, or a watchdog's abort",
    ),
    signal.SIGTERM: ("WorkloadTerminated", "terminated by SIGTERM from inside the container"),
    signal.SIGINT: ("WorkloadTerminated", "interrupted by SIGINT from inside the container"),
}


@dataclass(frozen=True, slots=True)
class ExitMeaning:
    reason: str
    message: str
    severity: Severity
    fault_class: FaultClass


def explain_exit(
    code: int | None, signal_number: int | None, final_codes: Collection[int] = ()
) -> ExitMeaning:
    """The meaning of an exit with ``code``, or by ``signal_number``.

    A code of 128+N from a shell that ran the program means the program died of signal N.
    """
    shell_signal = None if code is None else code - SHELL_SIGNAL_BASE
    if signal_number is None and shell_signal in _SIGNALS and code not in final_codes:
        signal_number = shell_signal
    if signal_number is not None:
        return _signalled(signal_number)
    assert code is not None, "an exit has a code or a signal"
    if code == 0:
        return ExitMeaning(
            "WorkloadCompleted",
            "the command finished with exit code 0",
            Severity.INFO,
            FaultClass.APPLICATION,
        )
    if code in CANNOT_RUN:
        return ExitMeaning(
            WORKLOAD_CANNOT_START,
            f"{CANNOT_RUN[code]} (exit code {code})",
            Severity.FATAL,
            FaultClass.APPLICATION,
        )
    if code in final_codes:
        return ExitMeaning(
            WORKLOAD_GAVE_UP,
            f"the command exited with code {code}, which WATCHER_FINAL_EXIT_CODES lists as "
            "final: no restart",
            Severity.FATAL,
            FaultClass.APPLICATION,
        )
    return ExitMeaning(
        "WorkloadFailed",
        f"the command failed with exit code {code}",
        Severity.FATAL,
        FaultClass.APPLICATION,
    )


def _signalled(number: int) -> ExitMeaning:
    reason, message = _SIGNALS.get(number, ("WorkloadKilled", ""))
    if not message:
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        message = f"killed by {name}"
    return ExitMeaning(reason, message, Severity.FATAL, FaultClass.APPLICATION)
