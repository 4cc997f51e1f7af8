"""The nvidia-smi backend: one `--query-gpu` run per poll, through `command.Command`.

A late run is killed and reported as timed out. The output (CSV, or the driver's
messages) is read by `formats.smi_csv`; an exit code the output does not explain becomes
a `ToolFailure` (nvidia-smi(1), RETURN VALUE).
"""

from collections.abc import Sequence
from typing import Any

from watcher.gpu.backends.command import MAX_OUTPUT, Command, Run
from watcher.gpu.formats.common import UNRECOGNIZED, tool_messages
from watcher.gpu.formats.smi_csv import QUERY_FIELDS, fallback_fields, parse_query_csv
from watcher.gpu.model import Snapshot, ToolFailure, ToolProblem

SOURCE = "nvidia-smi"
FORMAT = "--format=csv,nounits"
"""With the header: the parser maps the columns by name."""
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


class SmiBackend:
    """Polls `nvidia-smi --query-gpu=<fields>` and reads the CSV with `formats.smi_csv`."""

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
        return interpret(run, self._runner.max_output)

    def status(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "fields": list(self.fields),
            "stuck_pid": self._runner.stuck(),
        }

    async def close(self) -> None:
        self._runner.close()


def interpret(run: Run, max_output: int = MAX_OUTPUT, source: str = SOURCE) -> Snapshot:
    """One run's exit code and output as a Snapshot (here, or relayed from the trainer's
    container by the launcher's GPU relay)."""
    if run.overflow:
        return _failed(
            ToolProblem.FAILED, f"more than {max_output} bytes of output: killed", source
        )
    snapshot = parse_query_csv(_messages_last(run), None)
    if run.code == 0:
        return Snapshot(source, snapshot.readings, snapshot.failures)
    # A failed run: what the output names (a lost GPU, no driver) beside the rows of
    # the GPUs still there; the exit code when the output names nothing.
    failures = tuple(f for f in snapshot.failures if not f.detail.startswith(UNRECOGNIZED))
    named = any(f.problem is not ToolProblem.FAILED for f in failures)
    if not named and not any(r.lost for r in snapshot.readings):
        problem = EXIT_CODES.get(run.code, ToolProblem.FAILED)
        failures = (ToolFailure(problem, f"exit {run.code}: {run.first_line()}"),)
    return Snapshot(source, snapshot.readings, failures)


def _messages_last(run: Run) -> str:
    """The output with nvidia-smi's messages after the CSV: a lost GPU's line may come
    before the header, and the header must be the first line."""
    lines = run.stdout.splitlines()
    messages = [line for line in lines if any(tool_messages(line))]
    rest = [line for line in lines if not any(tool_messages(line))]
    return "\n".join([*rest, *messages, run.stderr])


def _failed(problem: ToolProblem, detail: str, source: str = SOURCE) -> Snapshot:
    return Snapshot(source, failures=(ToolFailure(problem, detail),))
