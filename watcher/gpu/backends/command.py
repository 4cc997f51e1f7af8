"""Runs a GPU tool (nvidia-smi, dcgmi) as a child process, never trusting it.

Each run has a deadline; a late one is killed with its whole process group (the tool may
have forked). Output is capped. A run still stuck after the kill (an uninterruptible wait
inside the driver: a wedged GPU can block nvidia-smi for minutes) blocks new runs until
it is gone, so a sick GPU never piles up processes. Every backend that runs a command
uses this.
"""

import asyncio
import contextlib
import os
import signal
from collections.abc import Sequence
from dataclasses import dataclass

MAX_OUTPUT = 1 << 20
"""Bytes kept from stdout (and from stderr): 8 GPUs x 12 fields is under 2 KiB."""
REAP_TIMEOUT = 1.0
"""How long to wait for a killed run to be gone before giving up on it for this poll."""


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
