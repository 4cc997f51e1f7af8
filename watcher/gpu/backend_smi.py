"""The nvidia-smi backend: one `--query-gpu` run per poll, never trusted.

Each run has a deadline; a late one is killed with its whole process group and reported
as timed out. Output is capped. A run still stuck after the kill (an uninterruptible
wait inside the driver) blocks new runs until it is gone, so a wedged GPU never piles up
processes. The output (CSV, or the driver's messages) is read by `parse_smi_csv`; an
exit code the output does not explain becomes a `ToolFailure` (gpu.md 1.5).
"""

import asyncio
import contextlib
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from watcher.gpu.model import Snapshot, ToolFailure, ToolProblem
from watcher.gpu.parse_common import UNRECOGNIZED, tool_messages
from watcher.gpu.parse_smi_csv import QUERY_FIELDS, fallback_fields, parse_query_csv

SOURCE = "nvidia-smi"
FORMAT = "--format=csv,nounits"
"""With the header: the parser maps the columns by name."""
MAX_OUTPUT = 1 << 20
"""Bytes kept from stdout (and from stderr): 8 GPUs x 12 fields is under 2 KiB."""
REAP_TIMEOUT = 1.0
"""How long to wait for a killed run to be gone before giving up on it for this poll."""
MAX_RETRIES = 3
"""Queries with fewer fields after nvidia-smi refused one (older drivers), per poll."""
EXIT_CODES = {
    6: ToolProblem.NO_DEVICES,
    9: ToolProblem.DRIVER_NOT_LOADED,
    12: ToolProblem.LIBRARY_NOT_FOUND,
    15: ToolProblem.GPU_LOST,
}
"""nvidia-smi(1): 6 object not found, 9 driver not loaded, 12 NVML library not found,
15 GPU fell off the bus; 2 (bad argument) leads to a retry; anything else: FAILED."""


@dataclass(frozen=True)
class Run:
    """What one run of the command left."""

    code: int
    stdout: str
    stderr: str
    overflow: bool = False
    """More than the output cap: the run was killed."""

    @property
    def text(self) -> str:
        return self.stdout + "\n" + self.stderr

    def first_line(self) -> str:
        for line in (self.stderr + "\n" + self.stdout).splitlines():
            if line.strip():
                return line.strip()[:300]
        return "(no output)"


class Command:
    """Runs one command at a time under a deadline, with capped output.

    A late run is killed with its process group. One that outlives the kill (stuck in
    the driver) is remembered, and no new run starts until it is gone."""

    def __init__(self, timeout: float, max_output: int = MAX_OUTPUT) -> None:
        self.timeout = timeout
        self.max_output = max_output
        self._stuck: asyncio.subprocess.Process | None = None

    def stuck(self) -> int | None:
        """The pid of a killed run that is still there."""
        if self._stuck is not None and self._stuck.returncode is None:
            return self._stuck.pid
        self._stuck = None
        return None

    async def run(self, args: Sequence[str]) -> Run:
        """Raises TimeoutError (after the kill) and OSError (cannot start it)."""
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, killed as a whole
        )
        done = False
        try:
            async with asyncio.timeout(self.timeout):
                run = await self._collect(process)
            done = not run.overflow
            return run
        finally:
            if not done:  # late, flooding or cancelled: the leader may be gone, not its group
                await self._kill(process)

    async def _collect(self, process: asyncio.subprocess.Process) -> Run:
        assert process.stdout is not None and process.stderr is not None
        out = asyncio.ensure_future(_read_capped(process.stdout, self.max_output))
        err = asyncio.ensure_future(_read_capped(process.stderr, self.max_output))
        try:
            await asyncio.wait((out, err), return_when=asyncio.FIRST_EXCEPTION)
        finally:
            for task in (out, err):
                task.cancel()
            await asyncio.wait((out, err))  # the readers let go of the pipes
        finished = [t for t in (out, err) if t.done() and not t.cancelled()]
        if any(isinstance(t.exception(), _Overflow) for t in finished):
            return Run(-1, "", "", overflow=True)
        code = await process.wait()
        return Run(code, _decode(out.result()), _decode(err.result()))

    async def _kill(self, process: asyncio.subprocess.Process) -> None:
        """Kill the group, reap it, and read the pipes to their end so they close."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        try:
            async with asyncio.timeout(REAP_TIMEOUT):  # wait() returns once the pipes closed
                await asyncio.gather(_drain(process.stdout), _drain(process.stderr))
                await process.wait()
        except TimeoutError:
            if process.returncode is None:
                self._stuck = process  # in the driver, uninterruptible: wait for it next time

    def close(self) -> None:
        pid = self.stuck()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


class SmiBackend:
    """Polls `nvidia-smi --query-gpu=<fields>` and reads the CSV with `parse_smi_csv`."""

    name = SOURCE

    def __init__(
        self,
        command: str,
        timeout: float,
        fields: Sequence[str] = QUERY_FIELDS,
        max_output: int = MAX_OUTPUT,
    ) -> None:
        self.command = command
        self.fields = tuple(fields)
        """What is queried; fields an older driver refused are dropped or renamed."""
        self._runner = Command(timeout, max_output)

    def args(self) -> list[str]:
        return [self.command, f"--query-gpu={','.join(self.fields)}", FORMAT]

    async def poll(self) -> Snapshot:
        pid = self._runner.stuck()
        if pid is not None:
            detail = f"{self.command} (pid {pid}) is still stuck after being killed"
            return _failed(ToolProblem.TIMED_OUT, detail)
        try:
            run = await self._query()
        except TimeoutError:
            detail = f"{self.command} did not finish within {self._runner.timeout:g}s: killed"
            return _failed(ToolProblem.TIMED_OUT, detail)
        except OSError as exc:
            return _failed(ToolProblem.FAILED, f"cannot run {self.command}: {exc}")
        return self.interpret(run)

    async def _query(self) -> Run:
        """Run the query; where nvidia-smi refuses a field (exit 2), ask without it."""
        for _ in range(MAX_RETRIES):
            run = await self._runner.run(self.args())
            fewer = fallback_fields(self.fields, run.text) if run.code != 0 else None
            if fewer is None:
                return run
            self.fields = fewer
        return await self._runner.run(self.args())

    def interpret(self, run: Run) -> Snapshot:
        """One run's exit code and output as a Snapshot."""
        if run.overflow:
            limit = self._runner.max_output
            return _failed(ToolProblem.FAILED, f"more than {limit} bytes of output: killed")
        snapshot = parse_query_csv(_messages_last(run), None)
        if run.code == 0:
            return snapshot
        # A failed run: what the output names (a lost GPU, no driver) beside the rows of
        # the GPUs still there; the exit code when the output names nothing.
        failures = tuple(f for f in snapshot.failures if not f.detail.startswith(UNRECOGNIZED))
        named = any(f.problem is not ToolProblem.FAILED for f in failures)
        if not named and not any(r.lost for r in snapshot.readings):
            problem = EXIT_CODES.get(run.code, ToolProblem.FAILED)
            failures = (ToolFailure(problem, f"exit {run.code}: {run.first_line()}"),)
        return Snapshot(SOURCE, snapshot.readings, failures)

    def status(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "fields": list(self.fields),
            "stuck_pid": self._runner.stuck(),
        }

    async def close(self) -> None:
        self._runner.close()


def _messages_last(run: Run) -> str:
    """The output with nvidia-smi's messages after the CSV: a lost GPU's line may come
    before the header, and the header must be the first line."""
    lines = run.stdout.splitlines()
    messages = [line for line in lines if any(tool_messages(line))]
    rest = [line for line in lines if not any(tool_messages(line))]
    return "\n".join([*rest, *messages, run.stderr])


async def _drain(stream: asyncio.StreamReader | None) -> None:
    while stream is not None and await stream.read(65536):
        pass


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


class _Overflow(Exception):
    """More output than the cap."""


async def _read_capped(stream: asyncio.StreamReader, limit: int) -> bytes:
    """Everything until EOF; _Overflow past ``limit`` bytes."""
    data = bytearray()
    while chunk := await stream.read(65536):
        data += chunk
        if len(data) > limit:
            raise _Overflow
    return bytes(data)


def _failed(problem: ToolProblem, detail: str) -> Snapshot:
    return Snapshot(SOURCE, failures=(ToolFailure(problem, detail),))
