"""The termination message: what `kubectl describe pod` shows as the sidecar's last words."""

import os
from pathlib import Path

from watcher.state.ledger import LedgerEntry
from watcher.types import Decision

LIMIT = 4096
"""The kubelet reads at most this many bytes of the termination message."""


def termination_message(decision: Decision, entry: LedgerEntry, ledger_path: Path) -> str:
    """A short, readable account of why the watcher exits, at most ``LIMIT`` bytes."""
    finding = decision.finding
    lines = [
        f"pod-watcher: {decision.explanation}",
        f"reason: {finding.reason}",
        f"fault class: {finding.fault_class.value}",
        f"detail: {finding.message}",
    ]
    if finding.file is not None:
        lines.append(f"file: {finding.file} (byte {finding.offset})")
    budget = decision.details
    if "restarts_in_window" in budget:
        lines.append(
            f"restart {int(str(budget['restarts_in_window'])) + 1} of at most "
            f"{budget['max_restarts']} per {budget['window_s']:g}s"
        )
    lines.append(f"ledger: {ledger_path} id {entry.id}")
    lines.append("evidence:")
    lines.extend(finding.evidence)
    return truncate_utf8("\n".join(lines) + "\n", LIMIT)


def truncate_utf8(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` UTF-8 bytes without splitting a character."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 4].decode("utf-8", "ignore") + "…\n"


def write_termination_log(path: Path, message: str) -> None:
    """Replace the file's content with ``message``. Blocking: call it with a deadline."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, message.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
