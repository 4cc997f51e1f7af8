"""Run the command, report its exit and obey the watcher's verdict."""

from __future__ import annotations

import errno
import os
import sys
import time

from . import gpu_relay
from .channel import Channel
from .logcopy import LogCopy
from .runner import VERDICT_POLL, Runner, exit_status
from .settings import Settings, say

RECHECK = 0.1
"""Seconds between looks at the verdict while waiting on one."""


def _leave_message(settings: Settings, reason: str, status: int) -> None:
    """Best effort: the watcher's reason in this container's termination message."""
    text = f"pod-watcher: {reason}\nexit code {status}\n"
    try:
        with open(settings.termination_log, "w", encoding="utf-8") as handle:
            handle.write(text[:4000])
    except OSError:
        pass


def await_verdict(runner: Runner, status: int) -> int:
    """What the watcher says about this exit, within the deadlines; the exit code to use."""
    settings, channel = runner.settings, runner.channel
    deadline = time.monotonic() + settings.verdict_timeout
    absent_since: float | None = None
    while not runner.terminated():
        now = time.monotonic()
        verdict = channel.verdict()
        if verdict is not None:
            return obey(runner, verdict, status)
        present = channel.watcher_present()
        if present:
            absent_since = None
        elif absent_since is None:
            absent_since = now
        if present is None or (
            absent_since is not None and now - absent_since >= settings.absent_wait
        ):
            say(f"no pod-watcher is running: exiting {status}")
            return status
        if now >= deadline:
            say(f"no verdict within {settings.verdict_timeout:g}s: exiting {status}")
            return status
        runner.pump(VERDICT_POLL)
    return status


def obey(runner: Runner, verdict: dict[str, object], status: int) -> int:
    """Carry out a verdict; a newer one (another decision) replaces it while waiting."""
    while True:
        reason = str(verdict.get("reason") or "")
        kind = verdict["verdict"]
        if kind == "release":
            if status != 0 and reason:
                _leave_message(runner.settings, reason, status)
            return status
        wait = verdict.get("wait")
        limit = float(wait) if isinstance(wait, (int, float)) else runner.settings.restart_wait
        doing = "waiting for the in-place restart" if kind == "restart" else "held by the watcher"
        say(f"{doing}: {reason}")
        newer = _wait_out(runner, verdict, None if kind == "hold" else limit)
        if newer is None:
            if not runner.terminated():
                say(f"the in-place restart did not come within {limit:g}s: exiting {status}")
            return status
        verdict = newer


def _wait_out(
    runner: Runner, verdict: dict[str, object], limit: float | None
) -> dict[str, object] | None:
    """Wait until stopped or ``limit`` passed (None), or until another verdict arrives."""
    until = None if limit is None else time.monotonic() + limit
    while not runner.terminated() and (until is None or time.monotonic() < until):
        runner.pump(RECHECK if until is None else min(RECHECK, until - time.monotonic()))
        latest = runner.channel.verdict()
        if latest is not None and latest.get("id") != verdict.get("id"):
            return latest
    return None


def _home() -> str:
    """The directory holding the launcher archive (this module lies inside the zip)."""
    path = os.path.abspath(__file__)
    while not os.path.isfile(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return os.path.dirname(path)


def run(argv: list[str]) -> int:
    settings = Settings(_home())
    channel = Channel(settings)
    runner = Runner(argv, settings, channel, LogCopy(settings))
    runner.install_signals()
    channel.hold_launcher_lock()
    channel.record("start", pid=os.getpid(), command=argv)
    gpu_relay.start(settings, channel.start)  # hook (gpu2): stopped at exit, see gpu_relay
    try:
        runner.start()
    except OSError as exc:
        status = 127 if exc.errno == errno.ENOENT else 126
        say(f"cannot run {argv[0]}: {exc}")
        channel.record("exit", code=status, signal=None, status=status, error=str(exc))
        return await_verdict(runner, status)
    runner.run_command()
    assert runner.status is not None
    status, code, number = exit_status(runner.status)
    channel.record(
        "exit",
        pid=runner.child.pid if runner.child else None,
        code=code,
        signal=number,
        status=status,
        stopped=runner.stop_reason,
        forwarded=runner.signals or None,
        log_dropped=runner.log.dropped,
    )
    runner.log.close()
    return status if runner.terminated() else await_verdict(runner, status)


USAGE = "usage: python3 launch -- COMMAND [ARG...]"


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        say(USAGE)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
