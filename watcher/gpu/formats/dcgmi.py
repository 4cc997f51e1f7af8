"""`dcgmi health -c` (text or `-j` JSON) and `dcgmi diag` text -> Snapshot.

Public:

* `parse_dcgmi_health(text) -> Snapshot`, `read_dcgmi(text) -> (Snapshot, lines)`:
  health reports in the current layout (`| Overall Health | Warning`, `| -> 0 | Warning`,
  `|       -> PCIe system | Warning`), the older one (`| GPU ID: 0 | Warning |` then
  `| | PCIe system: Warning - ...`), the `-j` JSON tree (`body` / `GPU` / `children` /
  `<id>` / `children` / `Errors` / `children` / `<system>` / `value`), and `dcgmi diag`
  tables (`| memory | Pass |` then `| | GPU0: Pass |`: health `{"diag memory": "Pass"}`).

Each GPU gets ``health={system: "Healthy"|"Warning"|"Failure"}``. dcgmi numbers GPUs by
its own entity id and prints no UUID: the reading's id is `GpuId(index=N)`. Only GPUs with
an incident are listed; a healthy report gives no reading. Only the GPU entity group is
read (NvSwitch, ConnectX... are not this Pod's GPUs). dcgmi's errors (`Error: Health
watches not enabled`, no host engine, unknown group) are FAILED tool failures: its exit
status does not reflect health, so the text is what counts. Never raises.
"""

import json
import re
from typing import Final

from watcher.gpu.formats.common import Located, Text, as_text, guarded, too_large, unrecognized
from watcher.gpu.model import GpuId, GpuReading, Snapshot, ToolFailure, ToolProblem

SOURCE: Final = "dcgm"
_STATES: Final = ("Healthy", "Warning", "Failure", "Internal error")
_OLD_ENTITY: Final = re.compile(r"^GPU ID:\s*(\d+)$")
_OLD_SYSTEM: Final = re.compile(r"^([A-Za-z][\w ]*?):\s*(Healthy|Warning|Failure)\b")
_DIAG_GPU: Final = re.compile(r"\bGPU\s*(\d+):\s*([A-Za-z]+)")
_ERROR: Final = re.compile(
    r"^\s*Error:.*$|unable to establish a connection|host engine|Unable to connect", re.I | re.M
)

Health = dict[int, dict[str, str]]
"""DCGM GPU id -> {system: state}."""


def parse_dcgmi_health(text: Text) -> Snapshot:
    return read_dcgmi(text)[0]


@guarded(SOURCE)
def read_dcgmi(text: Text) -> Located:
    raw = as_text(text)
    refused = too_large(SOURCE, raw)
    if refused:
        return refused, {}
    if raw.lstrip().startswith("{"):
        return _snapshot(_json(json.loads(raw))), {}
    rows = _rows(raw)
    if "Health Monitor Report" in raw:
        health, lines = _text_health(rows)
        return _snapshot(health), _labels(lines)
    if "Diagnostic" in raw and _DIAG_GPU.search(raw):
        health, lines = _diag(rows)
        return _snapshot(health), _labels(lines)
    error = _ERROR.search(raw)
    if error:
        failure = ToolFailure(ToolProblem.FAILED, error.group(0).strip()[:300])
        return Snapshot(SOURCE, failures=(failure,)), {}
    return unrecognized(SOURCE, raw, "dcgmi health or diag output"), {}


def _snapshot(health: Health) -> Snapshot:
    readings = (GpuReading(GpuId(index=gpu), health=systems) for gpu, systems in health.items())
    return Snapshot(SOURCE, readings=tuple(readings))


def _labels(lines: dict[int, int]) -> dict[str, int]:
    return {GpuId(index=gpu).label(): line for gpu, line in lines.items()}


def _rows(raw: str) -> list[tuple[int, str, str]]:
    """(line number, left cell, right cell) of every `| left | right |` row."""
    rows = []
    for number, line in enumerate(raw.splitlines(), 1):
        text = line.strip()
        if not text.startswith("|") or text[1:2] in ("-", "="):
            continue
        left, bar, right = text.strip("|").partition("|")
        if bar:
            rows.append((number, left.strip(), right.strip()))
    return rows


def _text_health(rows: list[tuple[int, str, str]]) -> tuple[Health, dict[int, int]]:
    report = _Report()
    for number, left, right in rows:
        report.row(number, left, right)
    return {g: _systems(s) for g, s in report.health.items()}, report.lines


class _Report:
    """Walks the rows of a health report, current or older layout."""

    def __init__(self) -> None:
        self.health: Health = {}
        self.lines: dict[int, int] = {}
        self._group = ""
        self._gpu: int | None = None
        self._old = False

    def row(self, number: int, left: str, right: str) -> None:
        old = _OLD_ENTITY.match(left)
        name = left.removeprefix("->").strip()
        if old:
            self._old = True
            self._entity(int(old.group(1)), number, right)
        elif left.startswith("->") and name.isdigit():
            self._gpu = None
            if self._group == "GPU":
                self._entity(int(name), number, right)
        elif left.startswith("->"):
            state = _state(right)
            if self._gpu is not None and name != "Errors" and state:
                self.health[self._gpu][name] = state
        elif left:  # a top-level row: Overall Health, an entity group, `Group 1`
            self._group, self._gpu = left, None
        elif self._old and self._gpu is not None:
            system = _OLD_SYSTEM.match(right)
            if system:
                self.health[self._gpu][system.group(1)] = system.group(2)

    def _entity(self, gpu: int, number: int, right: str) -> None:
        self._gpu = gpu
        self.lines.setdefault(gpu, number)
        systems = self.health.setdefault(gpu, {})
        state = _state(right)
        if state:
            systems.setdefault("GPU", state)


def _systems(systems: dict[str, str]) -> dict[str, str]:
    """The systems' states; the GPU's own state only when no system was named."""
    named = {k: v for k, v in systems.items() if k != "GPU"}
    return named or systems


def _state(cell: str) -> str | None:
    word = cell.split(" - ", maxsplit=1)[0].strip()
    return word if word in _STATES else None


def _json(tree: object) -> Health:
    body = tree.get("body", {}) if isinstance(tree, dict) else {}
    gpus = _children(body.get("GPU") if isinstance(body, dict) else None)
    health: Health = {}
    for gpu, node in gpus.items():
        if not gpu.isdigit() or not isinstance(node, dict):
            continue
        errors = _children(node).get("Errors")
        systems = _children(errors) if errors is not None else _children(node)
        states = {n: v["value"] for n, v in systems.items() if isinstance(v, dict) and
                  isinstance(v.get("value"), str)}  # fmt: skip
        value = node.get("value")
        health[int(gpu)] = states or ({"GPU": value} if isinstance(value, str) else {})
    return health


def _children(node: object) -> dict[str, object]:
    children = node.get("children") if isinstance(node, dict) else None
    return children if isinstance(children, dict) else {}


def _diag(rows: list[tuple[int, str, str]]) -> tuple[Health, dict[int, int]]:
    health: Health = {}
    lines: dict[int, int] = {}
    test = ""
    for number, left, right in rows:
        if left:
            test = left
        for gpu, result in _DIAG_GPU.findall(right):
            health.setdefault(int(gpu), {})[f"diag {test}"] = result
            lines.setdefault(int(gpu), number)
    return health, lines
