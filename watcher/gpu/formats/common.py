"""What every GPU output parser shares: value tokens, tool messages, line numbers.

Public:

* `tool_messages(text) -> (failures, lost readings)`: what nvidia-smi prints instead of
  data (driver not loaded, NVML missing, version mismatch, no devices, `Unable to
  determine the device handle for GPU...`: a lost reading keyed by that bus id).
* `recovery(text) -> Recovery | None`: `gpu_recovery_action` as nvidia-smi prints it.
* `unparsed(snapshot) -> str | None`: why nothing could be read at all (not the tool's
  output, too large, the parser failed), else None; the offline replay exits 2 on it.

Each format has `parse_*(text) -> Snapshot` and, where the format has lines,
`read_*(text) -> (Snapshot, lines)` with ``lines`` mapping `GpuId.label()` to the 1-based
line of that GPU's block or row (for the offline replay). Text may be str or bytes (bytes
are decoded as UTF-8, bad bytes replaced); pass stdout and stderr together, since the
tool's messages are understood wherever they appear. Parsers never raise: `guarded` turns
any exception into a FAILED tool failure whose detail starts with `PARSER_ERROR`; input
that is not the tool's output at all gives one starting with `UNRECOGNIZED`.
"""

import functools
import re
from collections.abc import Callable, Iterable
from typing import Final, ParamSpec

from watcher.gpu.model import (
    GpuId,
    GpuReading,
    Recovery,
    Snapshot,
    ToolFailure,
    ToolProblem,
    normalize_bus_id,
)

Text = str | bytes
Lines = dict[str, int]
"""GPU label (`GpuId.label()`) -> 1-based line where that GPU's block or row starts."""
Located = tuple[Snapshot, Lines]

MAX_INPUT: Final = 16 << 20
"""Characters; longer output is refused rather than parsed."""
UNRECOGNIZED: Final = "unrecognized output"
TOO_LARGE: Final = "output too large"
PARSER_ERROR: Final = "parser error"

UNKNOWN: Final = frozenset(
    {
        "n/a",
        "not supported",
        "requested functionality has been deprecated",
        "insufficient permissions",
        "function not found",
        "",
    }
)
"""Values that only mean "this source does not say" (brackets stripped, lower case)."""
ODD: Final = frozenset({"unknown error", "err!"})
RESET: Final = "gpu requires reset"
LOST: Final = "gpu is lost"

_RECOVERY: Final = {
    "none": Recovery.NONE,
    "reset": Recovery.GPU_RESET,
    "gpu reset": Recovery.GPU_RESET,
    "gpu reset required": Recovery.GPU_RESET,
    "reboot": Recovery.NODE_REBOOT,
    "node reboot": Recovery.NODE_REBOOT,
    "node reboot required": Recovery.NODE_REBOOT,
    "drain p2p": Recovery.DRAIN_P2P,
    "drain and reset": Recovery.DRAIN_AND_RESET,
}

_MESSAGES: Final = tuple(
    (re.compile(pattern, re.I | re.M), problem)
    for pattern, problem in (
        (r"couldn't communicate with the NVIDIA driver", ToolProblem.DRIVER_NOT_LOADED),
        (r"Driver/library version mismatch", ToolProblem.VERSION_MISMATCH),
        (r"libnvidia-ml\.so|NVML Shared Library Not Found", ToolProblem.LIBRARY_NOT_FOUND),
        (r"^\s*No devices were found", ToolProblem.NO_DEVICES),
        (r"Failed to initialize NVML", ToolProblem.FAILED),
        (r'Field "[^"]*" is not a valid field to query', ToolProblem.FAILED),
    )
)
"""nvidia-smi's own messages, the most specific first."""
_NO_HANDLE: Final = re.compile(
    r"Unable to determine the device handle for gpu\s*(?:\d+:\s*)?"
    r"([0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}(?:\.[0-9a-f])?)",
    re.I,
)

P = ParamSpec("P")


def as_text(data: Text) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return data


def token(value: str | None) -> str:
    """A value as compared with the tokens: stripped, brackets dropped, lower case."""
    return (value or "").strip().removeprefix("[").removesuffix("]").strip().lower()


def known(value: str | None) -> str | None:
    """The value, or None when it is a token (`[N/A]`, `Unknown Error`, `ERR!`...)."""
    if value is None:
        return None
    text = token(value)
    if text in UNKNOWN or text in ODD or text in (RESET, LOST):
        return None
    return value.strip()


def integer(value: str | None) -> int | None:
    """`12`, `12 us`, `0x1f` -> the number; anything else -> None."""
    text = known(value)
    if not text:
        return None
    first = text.split()[0]
    try:
        return int(first, 16) if first.lower().startswith("0x") else int(first)
    except ValueError:
        return None


def yes_no(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(token(value))


def active(value: str | None) -> bool | None:
    return {"active": True, "not active": False}.get(token(value))


def any_true(values: Iterable[bool | None]) -> bool | None:
    """True if any is True, False if all known ones are False, None if none is known."""
    seen = [v for v in values if v is not None]
    return any(seen) if seen else None


def recovery(value: str | None) -> Recovery | None:
    text = known(value)
    if text is None:
        return None
    return _RECOVERY.get(" ".join(text.lower().replace("_", " ").split()), Recovery.OTHER)


def failure(source: str, problem: ToolProblem, detail: str) -> Snapshot:
    return Snapshot(source, failures=(ToolFailure(problem, detail[:300]),))


def unrecognized(source: str, text: str, what: str) -> Snapshot:
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return failure(source, ToolProblem.FAILED, f"{UNRECOGNIZED}: not {what}: {first[:120]!r}")


def too_large(source: str, text: str) -> Snapshot | None:
    if len(text) > MAX_INPUT:
        return failure(source, ToolProblem.FAILED, f"{TOO_LARGE} ({len(text)} characters)")
    return None


def tool_messages(text: str) -> tuple[tuple[ToolFailure, ...], tuple[GpuReading, ...]]:
    """Failures named by the tool's own messages, and GPUs it could not get a handle for."""
    failures: tuple[ToolFailure, ...] = ()
    for pattern, problem in _MESSAGES:  # the most specific first; one message is enough
        match = pattern.search(text)
        if match:
            failures = (ToolFailure(problem, _line_of(text, match.start())),)
            break
    lost = {}
    for match in _NO_HANDLE.finditer(text):
        bus_id = normalize_bus_id(match.group(1))
        lost[bus_id] = GpuReading(GpuId(bus_id=bus_id), lost=True)
    return failures, tuple(lost.values())


def _line_of(text: str, at: int) -> str:
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at)
    return text[start : end if end >= 0 else len(text)].strip()[:300]


def unique(readings: Iterable[GpuReading]) -> tuple[GpuReading, ...]:
    """One reading per GPU: the first seen (some outputs list a GPU once per row)."""
    seen: dict[str, GpuReading] = {}
    for reading in readings:
        seen.setdefault(reading.gpu.key, reading)
    return tuple(seen.values())


def guarded(source: str) -> Callable[[Callable[P, Located]], Callable[P, Located]]:
    """A parser that never raises: any exception becomes a FAILED tool failure."""

    def wrap(parse: Callable[P, Located]) -> Callable[P, Located]:
        @functools.wraps(parse)
        def safe(*args: P.args, **kwargs: P.kwargs) -> Located:
            try:
                return parse(*args, **kwargs)
            except Exception as exc:  # garbage in must not crash the watcher
                detail = f"{PARSER_ERROR}: {type(exc).__name__}: {exc}"
                return failure(source, ToolProblem.FAILED, detail), {}

        return safe

    return wrap


def unparsed(snapshot: Snapshot) -> str | None:
    """Why nothing could be read from the input (not the tool's output, too large, or the
    parser failed), or None when it was read, even if only as a tool failure."""
    if snapshot.readings:
        return None
    for problem in snapshot.failures:
        if problem.detail.startswith((UNRECOGNIZED, TOO_LARGE, PARSER_ERROR)):
            return problem.detail
    return None


def lines_of(readings: Iterable[tuple[GpuReading, int]]) -> Lines:
    """Where each GPU was first seen."""
    lines: Lines = {}
    for reading, line in readings:
        lines.setdefault(reading.gpu.label(), line)
    return lines
