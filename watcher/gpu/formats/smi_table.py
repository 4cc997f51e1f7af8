"""`nvidia-smi` (no arguments): the default summary table -> Snapshot.

Public:

* `parse_smi_table(text) -> Snapshot`, `read_smi_table(text) -> (Snapshot, lines)`.

The table carries little: index, name, bus id, the volatile uncorrectable ECC count, and
`ERR!` in any cell whose query failed (named in ``odd_fields``: `Fan`, `Temp`, `Perf`,
`Pwr:Usage/Cap`, `Memory-Usage`, ...). Both banners are understood (`Driver Version:` and,
from 610, `KMD Version:`); the Processes box is skipped. Never raises.
"""

import re
from typing import Final

from watcher.gpu.formats.common import (
    LOST,
    RESET,
    Located,
    Text,
    as_text,
    guarded,
    integer,
    known,
    lines_of,
    too_large,
    tool_messages,
    unique,
    unrecognized,
)
from watcher.gpu.model import GpuId, GpuReading, Snapshot
from watcher.gpu.model import normalize_bus_id as bus

SOURCE: Final = "nvidia-smi"
_BUS: Final = re.compile(r"\b([0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-9a-f])\b", re.I)
_COLUMNS: Final = (
    ("Name", "Bus-Id", "Volatile Uncorr. ECC"),
    ("Fan/Temp/Perf/Pwr", "Memory-Usage", "Compute M."),
    ("", "", "MIG M."),
)
_SECOND_ROW: Final = ("Fan", "Temp", "Perf")
_ERR: Final = "ERR!"

Block = tuple[int, list[list[str]]]
"""(line of the GPU's first row, its rows of three cells)."""


def looks_like_table(text: str) -> bool:
    return "NVIDIA-SMI " in text and "Bus-Id" in text


def parse_smi_table(text: Text) -> Snapshot:
    return read_smi_table(text)[0]


@guarded(SOURCE)
def read_smi_table(text: Text) -> Located:
    raw = as_text(text)
    refused = too_large(SOURCE, raw)
    if refused:
        return refused, {}
    failures, lost = tool_messages(raw)
    found = [(_reading(rows), line) for line, rows in _blocks(raw.splitlines())]
    if not found and not failures and not lost:
        return unrecognized(SOURCE, raw, "the nvidia-smi table"), {}
    readings = unique([r for r, _ in found] + list(lost))
    return Snapshot(SOURCE, readings=readings, failures=failures), lines_of(found)


def _blocks(lines: list[str]) -> list[Block]:
    """Each GPU's rows: from a row with a bus id to the next `+---` or `|===` rule."""
    blocks: list[Block] = []
    current: list[list[str]] | None = None
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text.startswith("|") or text[1:2] in ("-", "="):
            current = None
            continue
        cells = [cell.strip() for cell in text.strip("|").split("|")]
        if len(cells) != 3:
            current = None
        elif cells[0][:1].isdigit() and _BUS.search(cells[1]):
            current = [cells]
            blocks.append((number, current))
        elif current is not None:
            current.append(cells)
    return blocks


def _reading(rows: list[list[str]]) -> GpuReading:
    first = rows[0]
    words = first[0].split()
    match = _BUS.search(first[1])
    flat = " ".join(" ".join(row) for row in rows).lower()
    return GpuReading(
        gpu=GpuId(bus_id=bus(match.group(1) if match else None), index=integer(words[0])),
        name=known(" ".join(words[1:-1])) if len(words) > 2 else None,
        lost=LOST in flat,
        reset_required=RESET in flat,
        ecc_uncorrected_volatile=integer(first[2]),
        odd_fields=_odd(rows),
    )


def _odd(rows: list[list[str]]) -> tuple[str, ...]:
    names: list[str] = []
    for r, row in enumerate(rows[: len(_COLUMNS)]):
        for c, cell in enumerate(row):
            for w, word in enumerate(cell.split()):
                if word.upper() == _ERR:
                    names.append(_column(r, c, w))
    return tuple(dict.fromkeys(names))


def _column(row: int, cell: int, word: int) -> str:
    if (row, cell) == (1, 0):
        return _SECOND_ROW[word] if word < len(_SECOND_ROW) else "Pwr:Usage/Cap"
    return _COLUMNS[row][cell] or f"row {row + 1} cell {cell + 1}"
