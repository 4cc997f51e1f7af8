"""`nvidia-smi --query-gpu=<fields> --format=csv[,noheader][,nounits]` -> Snapshot.

Public:

* `QUERY_FIELDS`: what the nvidia-smi backend queries (570+ drivers: with
  `gpu_recovery_action` and the `clocks_event_reasons.*` names).
* `FALLBACK_FIELDS`: the same without `gpu_recovery_action` and with the older
  `clocks_throttle_reasons.*` names, which every driver accepts (590 still lists them).
* `unknown_field(text) -> str | None`: the field nvidia-smi refused
  (`Field "gpu_recovery_action" is not a valid field to query.`), else None.
* `fallback_fields(fields, text) -> tuple | None`: ``fields`` without the one nvidia-smi
  refused (an `clocks_event_reasons.*` field is swapped for its old name); None when the
  text names no field of ``fields``. Retry with it until the query is accepted.
* `parse_query_csv(text, fields=None) -> Snapshot`: with a header (``fields=None``) the
  columns are mapped by name (` [unit]` suffixes stripped, aliases such as `gpu_uuid` and
  `clocks_throttle_reasons.*` understood); with `noheader`, pass the queried ``fields``.
* `read_query_csv(text, fields=None) -> (Snapshot, lines)`: the same, plus the line of
  each GPU's row.

Cells: `[N/A]`, `N/A`, `[Not Supported]`, deprecated, `[Insufficient Permissions]`,
`[Function Not Found]` -> unknown (None); `[Unknown Error]` -> unknown and named in
``odd_fields``; `[GPU requires reset]` in any cell -> ``reset_required``; `[GPU is lost]`
-> ``lost``. Never raises: garbage gives a FAILED tool failure.
"""

import re
from collections.abc import Sequence
from typing import Final

from watcher.gpu.formats.common import (
    LOST,
    ODD,
    RESET,
    Located,
    Text,
    active,
    any_true,
    as_text,
    guarded,
    integer,
    known,
    lines_of,
    recovery,
    token,
    too_large,
    tool_messages,
    unique,
    unrecognized,
    yes_no,
)
from watcher.gpu.model import GpuId, GpuReading, Snapshot, ToolFailure, ToolProblem
from watcher.gpu.model import normalize_bus_id as bus

SOURCE: Final = "nvidia-smi"

_EVENT, _THROTTLE = "clocks_event_reasons.", "clocks_throttle_reasons."
_THERMAL: Final = (_EVENT + "hw_thermal_slowdown", _EVENT + "sw_thermal_slowdown")

QUERY_FIELDS: Final = (
    "uuid",
    "pci.bus_id",
    "index",
    "name",
    "ecc.errors.uncorrected.volatile.total",
    "remapped_rows.pending",
    "remapped_rows.failure",
    "retired_pages.pending",
    *_THERMAL,
    "gpu_recovery_action",
)
FALLBACK_FIELDS: Final = tuple(
    f.replace(_EVENT, _THROTTLE) for f in QUERY_FIELDS if f != "gpu_recovery_action"
)

_ALIASES: Final = {"gpu_uuid": "uuid", "gpu_bus_id": "pci.bus_id", "gpu_name": "name"}
_IDENTITY: Final = frozenset({"uuid", "pci.bus_id", "index", "name"})
_UNIT: Final = re.compile(r"\s*\[[^\]]*\]\s*$")
_UNKNOWN_FIELD: Final = re.compile(r'Field "([^"]+)" is not a valid field to query', re.I)


def unknown_field(text: str) -> str | None:
    match = _UNKNOWN_FIELD.search(text)
    return match.group(1) if match else None


def fallback_fields(fields: Sequence[str], text: str) -> tuple[str, ...] | None:
    refused = unknown_field(text)
    if refused is None or refused not in fields:
        return None
    if refused.startswith(_EVENT):
        older = refused.replace(_EVENT, _THROTTLE)
        return tuple(older if f == refused else f for f in fields)
    return tuple(f for f in fields if f != refused)


def canonical(name: str) -> str:
    """`power.draw [W]` -> `power.draw`; aliases -> the name this module reads."""
    bare = _UNIT.sub("", name).strip()
    return _ALIASES.get(bare, bare.replace(_THROTTLE, _EVENT))


def parse_query_csv(text: Text, fields: Sequence[str] | None = None) -> Snapshot:
    return read_query_csv(text, fields)[0]


@guarded(SOURCE)
def read_query_csv(text: Text, fields: Sequence[str] | None = None) -> Located:
    raw = as_text(text)
    refused = too_large(SOURCE, raw)
    if refused:
        return refused, {}
    failures, lost = tool_messages(raw)
    rows = [  # nvidia-smi's own messages may come anywhere, even before the header
        (n, line)
        for n, line in enumerate(raw.splitlines(), 1)
        if line.strip() and not any(tool_messages(line))
    ]
    names, rows = _names(rows, fields)
    if names is None:
        if failures or lost:
            return Snapshot(SOURCE, readings=lost, failures=failures), {}
        return unrecognized(SOURCE, raw, "nvidia-smi --query-gpu CSV with a header"), {}
    found, bad = _rows(rows, names)
    readings = unique([r for r, _ in found] + list(lost))
    if bad:
        detail = f"{len(bad)} row(s) without {len(names)} cells, first: {bad[0][:120]!r}"
        failures += (ToolFailure(ToolProblem.FAILED, detail),)
    if not readings and not failures:
        return unrecognized(SOURCE, raw, "nvidia-smi --query-gpu CSV with GPU rows"), {}
    return Snapshot(SOURCE, readings=readings, failures=failures), lines_of(found)


def _names(
    rows: list[tuple[int, str]], fields: Sequence[str] | None
) -> tuple[list[str] | None, list[tuple[int, str]]]:
    """Column names, and the rows left after the header. A header in the output wins over
    ``fields``: it names what nvidia-smi printed."""
    header = [canonical(c) for c in rows[0][1].split(",")] if rows else []
    if _IDENTITY & set(header) and all(_looks_like_name(h) for h in header):
        return header, rows[1:]
    return (None if fields is None else [canonical(f) for f in fields]), rows


def _looks_like_name(name: str) -> bool:
    return bool(name) and " " not in name and all(c.isalnum() or c in "._" for c in name)


def _rows(
    rows: list[tuple[int, str]], names: list[str]
) -> tuple[list[tuple[GpuReading, int]], list[str]]:
    found, bad = [], []
    for number, line in rows:
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) == len(names):
            found.append((_reading(dict(zip(names, cells, strict=True))), number))
        else:
            bad.append(line)
    return found, bad


def _reading(cells: dict[str, str]) -> GpuReading:
    get = cells.get
    tokens = {name: token(value) for name, value in cells.items()}
    return GpuReading(
        gpu=GpuId(known(get("uuid")), bus(known(get("pci.bus_id"))), integer(get("index"))),
        name=known(get("name")),
        lost=LOST in tokens.values(),
        reset_required=RESET in tokens.values(),
        ecc_uncorrected_volatile=integer(get("ecc.errors.uncorrected.volatile.total")),
        remapped_rows_pending=yes_no(get("remapped_rows.pending")),
        remapped_rows_failure=yes_no(get("remapped_rows.failure")),
        retired_pages_pending=yes_no(get("retired_pages.pending")),
        recovery_action=recovery(get("gpu_recovery_action")),
        thermal_slowdown=any_true(active(get(name)) for name in _THERMAL),
        odd_fields=tuple(name for name, value in tokens.items() if value in ODD),
    )
