"""The command, its output pipes, the signals sent to it and stop requests."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time

from .channel import Channel
from .logcopy import LogCopy
from .settings import Settings, say, write_all

FORWARDED = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
TERMINATING = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT")
READ_SIZE = 1 << 16
CONTROL_POLL = 1.0
VERDICT_POLL = 0.01
DRAIN_AFTER_EXIT = 1.0
"""Seconds to keep reading output that the command's children still write after it exited."""


def exit_status(status: int) -> tuple[int, int | None, int | None]:
    """A wait status as (shell-style exit code, code, signal)."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        return 128 + number, None, number
    code = os.WEXITSTATUS(status)
    return code, code, None


class Runner:
    """The command, its output pipes and the signals sent to it."""

    def __init__(self, argv: list[str], settings: Settings, channel: Channel, log: LogCopy):
        self.argv = argv
        self.settings = settings
        self.channel = channel
        self.log = log
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe()
        for fd in (self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        self.selector.register(self.wake_r, selectors.EVENT_READ, 0)
        self.signals_only = selectors.DefaultSelector()
        self.signals_only.register(self.wake_r, selectors.EVENT_READ, 0)
        self.batching = False
        self.child: subprocess.Popen[bytes] | None = None
        self.status: int | None = None
        self.exited_at = 0.0
        self.signals: list[int] = []
        self.stop_reason: str | None = None
        self.kill_at: float | None = None
        self.next_control = 0.0

    def install_signals(self) -> None:
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        for name in FORWARDED:
            signal.signal(getattr(signal, name), self._on_signal)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.signals.append(signum)
        self._signal_group(signum)

    def _signal_group(self, signum: int) -> None:
        if self.child is not None and self.status is None:
            with contextlib.suppress(OSError):
                os.killpg(self.child.pid, signum)

    def terminated(self) -> bool:
        names = {getattr(signal, name) for name in TERMINATING}
        return any(number in names for number in self.signals)

    def start(self) -> None:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env["POD_WATCHER_START"] = str(self.channel.start)
        self.child = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env=env,
        )
        for stream, pipe in ((1, self.child.stdout), (2, self.child.stderr)):
            assert pipe is not None
            self.selector.register(pipe.fileno(), selectors.EVENT_READ, stream)

    def pump(self, timeout: float | None) -> bool:
        """Copy what the pipes hold; after a signal (SIGCHLD) reap children, the launcher
        may be PID 1. Only a signal costs a waitpid, not each write of the command.
        Returns whether any output came."""
        came = False
        for key, _ in self.selector.select(timeout):
            if key.data == 0:
                self._on_wake()
                continue
            try:
                data = os.read(key.fd, READ_SIZE)
            except OSError:
                data = b""
            if not data:
                self.selector.unregister(key.fd)
                continue
            came = True
            with contextlib.suppress(OSError):  # our stdout gone: the log file still gets it
                write_all(key.data, data)
            self.log.feed(key.data, data, time.monotonic())
        return came

    def _on_wake(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self.wake_r, 512):
                pass
        self._reap()

    def _pump_batched(self, timeout: float) -> None:
        """While output flows, sleep out a batch (a signal still wakes at once), then take
        what came meanwhile; when a batch finds nothing, wait for output again."""
        if self.batching and self.settings.batch > 0:
            for _ in self.signals_only.select(min(timeout, self.settings.batch)):
                self._on_wake()
            self.batching = self.pump(0)
        else:
            self.batching = self.pump(timeout)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.child is not None and pid == self.child.pid:
                self.status = status
                self.child.returncode = exit_status(status)[0]
                self.exited_at = time.monotonic()

    def pipes_open(self) -> bool:
        return len(self.selector.get_map()) > 1

    def run_command(self) -> None:
        """Until the command exited and its pipes ran dry (or stayed open too long)."""
        while True:
            now = time.monotonic()
            if self.status is not None and (
                not self.pipes_open() or now >= self.exited_at + DRAIN_AFTER_EXIT
            ):
                break
            partial = self.log.flush_due(now)
            wake = min(x for x in (self.next_control, partial, self.kill_at) if x is not None)
            timeout = max(0.0, wake - now)
            if self.status is None:
                self._pump_batched(timeout)
            else:
                self.pump(min(timeout, VERDICT_POLL))
            self._obey_control(time.monotonic())
        self.log.flush_due(time.monotonic(), force=True)

    def _obey_control(self, now: float) -> None:
        if self.kill_at is not None and now >= self.kill_at:
            self.kill_at = None
            self._signal_group(signal.SIGKILL)
        if now < self.next_control or self.status is not None:
            return
        self.next_control = now + CONTROL_POLL
        request = self.channel.stop_request()
        if request is None or self.stop_reason is not None:
            return
        self.stop_reason = str(request.get("reason") or "stopped by pod-watcher")
        grace = request.get("grace")
        grace = float(grace) if isinstance(grace, (int, float)) else self.settings.stop_grace
        say(f"stopping the command: {self.stop_reason}")
        self._signal_group(signal.SIGTERM)
        self.kill_at = now + grace
