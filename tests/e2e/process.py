"""Run the real `pod-watcher` in a child process and talk to it like the kubelet would.

`WatcherProcess` starts the watcher, reads its JSON log lines on background threads,
waits for the `ready` line (every wait has a deadline), exposes the HTTP port and always
kills the child on `close()`. Nothing here sleeps to synchronise: waits poll a condition
until a deadline.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self, TypeVar

from prometheus_client.parser import text_string_to_metric_families

from tests.waiting import POLL, wait_until

T = TypeVar("T")

START_TIMEOUT = 15.0
"""Deadline for a child to log `ready` (interpreter start-up included)."""

Record = dict[str, Any]


def module_command() -> list[str]:
    """`python -m watcher`, with this interpreter."""
    return [sys.executable, "-m", "watcher"]


def script_command() -> list[str]:
    """The installed `pod-watcher` console script next to this interpreter."""
    script = Path(sys.executable).parent / "pod-watcher"
    assert script.exists(), f"console script not installed at {script}"
    return [str(script)]


def child_env(env: Mapping[str, str]) -> dict[str, str]:
    """This environment without any WATCHER_ variable, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.upper().startswith("WATCHER_")}
    return {**base, "PYTHONUNBUFFERED": "1", **env}


def http_get(url: str, timeout: float) -> tuple[int, str]:
    """GET ``url``: its status and body, error statuses (4xx, 5xx) included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        with error:
            return int(error.code), error.read().decode("utf-8")


def run_command(
    args: Sequence[str], env: Mapping[str, str], cwd: Path, timeout: float = 20.0
) -> subprocess.CompletedProcess[str]:
    """Run a short command (check, version, a bad configuration) to completion."""
    return subprocess.run(
        [*module_command(), *args],
        env=child_env(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class WatcherProcess:
    """One `pod-watcher run` child process."""

    def __init__(
        self, env: Mapping[str, str], cwd: Path, command: Sequence[str] | None = None
    ) -> None:
        self.env = child_env(env)
        self.cwd = cwd
        self.command = [*(command or module_command()), "run"]
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.records: list[Record] = []
        self.port: int | None = None
        self.started_at = 0.0
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._readers: list[threading.Thread] = []

    def start(self) -> Self:
        self.started_at = time.monotonic()
        self._proc = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        for stream, sink, name in (
            (self._proc.stdout, self.stdout, "stdout"),
            (self._proc.stderr, self.stderr, "stderr"),
        ):
            reader = threading.Thread(
                target=self._read, args=(stream, sink), name=f"watcher-{name}", daemon=True
            )
            reader.start()
            self._readers.append(reader)
        return self

    def _read(self, stream: Any, sink: list[str]) -> None:
        for raw in stream:
            line = raw.rstrip("\n")
            with self._lock:
                sink.append(line)
                if sink is self.stdout:
                    try:
                        record = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(record, dict):
                        self.records.append(record)

    @property
    def proc(self) -> "subprocess.Popen[str]":
        assert self._proc is not None, "not started"
        return self._proc

    def describe(self) -> str:
        """The child's output so far, for failure messages."""
        with self._lock:
            out, err = self.stdout[-40:], self.stderr[-40:]
        return "--- stdout ---\n" + "\n".join(out) + "\n--- stderr ---\n" + "\n".join(err)

    # -- log lines ---------------------------------------------------------------------

    def find(self, predicate: Callable[[Record], bool]) -> Record | None:
        with self._lock:
            return next((r for r in self.records if predicate(r)), None)

    def wait_log(self, predicate: Callable[[Record], bool], timeout: float, what: str) -> Record:
        return wait_until(lambda: self.find(predicate), timeout, what, self.describe)

    def wait_msg(self, msg: str, timeout: float = 5.0) -> Record:
        return self.wait_log(lambda r: r.get("msg") == msg, timeout, f"log line {msg!r}")

    def wait_ready(self, timeout: float = START_TIMEOUT) -> int:
        """Wait for the `ready` line; returns (and remembers) the HTTP port."""

        def ready() -> Record | None:
            if self.proc.poll() is not None and self.find(_is_ready) is None:
                raise AssertionError(
                    f"exited {self.proc.returncode} before ready\n{self.describe()}"
                )
            return self.find(_is_ready)

        record = wait_until(ready, timeout, "the ready line", self.describe)
        self.port = int(record["port"])
        return self.port

    # -- process -----------------------------------------------------------------------

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_exit(self, timeout: float = 10.0) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running {timeout}s later\n{self.describe()}") from None

    def assert_stays_alive(self, seconds: float) -> None:
        """Fail as soon as the child exits within ``seconds`` (a non-event, so a duration)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            code = self.proc.poll()
            assert code is None, f"exited {code} unexpectedly\n{self.describe()}"
            time.sleep(POLL)

    def signal(self, signum: signal.Signals) -> None:
        self.proc.send_signal(signum)

    def close(self) -> None:
        """Kill the child if it still runs, reap it, and finish the readers."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait(10)
        for reader in self._readers:
            reader.join(5)
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()

    # -- HTTP --------------------------------------------------------------------------

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, str]:
        assert self.port is not None, "not ready yet"
        return http_get(f"http://127.0.0.1:{self.port}{path}", timeout)

    def get_json(self, path: str) -> Record:
        code, body = self.get(path)
        assert code == 200, f"GET {path}: {code} {body}"
        value = json.loads(body)
        assert isinstance(value, dict)
        return value

    def status(self) -> Record:
        return self.get_json("/status")

    def wait_status(
        self, predicate: Callable[[Record], bool], what: str, timeout: float = 5.0
    ) -> Record:
        def check() -> Record | None:
            assert self.alive(), f"exited {self.proc.returncode}\n{self.describe()}"
            status = self.status()
            return status if predicate(status) else None

        return wait_until(check, timeout, what, self.describe)

    def lines_scanned(self) -> int:
        return int(self.status()["monitors"]["log"]["lines_scanned"])

    def wait_scanned(self, lines: int, timeout: float = 5.0) -> Record:
        """Wait until the log monitor has scanned at least ``lines`` lines in total."""
        return self.wait_status(
            lambda s: int(s["monitors"]["log"]["lines_scanned"]) >= lines,
            f"{lines} lines scanned",
            timeout,
        )

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics, keyed by name and sorted labels."""
        code, body = self.get("/metrics")
        assert code == 200, body
        samples = {}
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples


def _is_ready(record: Record) -> bool:
    return record.get("msg") == "ready" and "port" in record
