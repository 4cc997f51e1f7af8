"""`nvidia-smi -q` text and `nvidia-smi -q -x` XML -> Snapshot.

Public:

* `parse_smi_q(text) -> Snapshot`, `read_smi_q(text) -> (Snapshot, lines)`: the indented
  `Key : Value` report, one block per `GPU 00000000:3B:00.0` line.
* `parse_smi_xml(text) -> Snapshot`, `read_smi_xml(text) -> (Snapshot, lines)`: the XML
  of DTD v10..v13 (`clocks_throttle_reasons` or `clocks_event_reasons`, `power_readings`
  or `gpu_power_readings`, `remapped_rows` as plain `N/A` under MIG, `attached_gpus`
  larger than the number of `<gpu>` elements).

Both read: identity (UUID, bus id, product name), `GPU Reset Status` (535-era: Reset
Required; Drain and Reset Recommended -> Recovery.DRAIN_AND_RESET) or `GPU Recovery
Action` (570+), volatile uncorrectable ECC (the sum of the SRAM/DRAM uncorrectable counts,
or the older Double Bit total), pending page retirement, remapped rows pending / failure,
PCIe replays, HW/SW thermal slowdown. A field reading `Unknown Error` (or `ERR!`) is
named in ``odd_fields``; it is never fatal. `GPU requires reset` / `GPU is lost` in any
field set ``reset_required`` / ``lost``. Never raises.
"""

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
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
from watcher.gpu.model import GpuId, GpuReading, Recovery, Snapshot, ToolFailure, ToolProblem
from watcher.gpu.model import normalize_bus_id as bus

SOURCE: Final = "nvidia-smi"
BANNER: Final = "==============NVSMI LOG=============="
GPU_HEADER: Final = re.compile(
    r"^GPU ([0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-9a-f])\s*$", re.I | re.M
)
"""The line that starts each GPU's block of `nvidia-smi -q`."""
_CLOCKS: Final = ("Clocks Event Reasons", "Clocks Throttle Reasons")
_THERMAL: Final = ("HW Thermal Slowdown", "SW Thermal Slowdown")
_VOLATILE: Final = ("ECC Errors", "Volatile")
_PENDING_PAGES: Final = ("pending_blacklist", "pending_retirement")

Entries = list[tuple[tuple[str, ...], str | None]]
"""(path of keys, value or None for a heading) in the order printed."""


def parse_smi_q(text: Text) -> Snapshot:
    return read_smi_q(text)[0]


@guarded(SOURCE)
def read_smi_q(text: Text) -> Located:
    raw = as_text(text)
    refused = too_large(SOURCE, raw)
    if refused:
        return refused, {}
    failures, lost = tool_messages(raw)
    starts = list(GPU_HEADER.finditer(raw))
    found = []
    for n, match in enumerate(starts):
        end = starts[n + 1].start() if n + 1 < len(starts) else len(raw)
        entries = _entries(raw[match.end() : end].splitlines())
        found.append((_q_reading(match.group(1), entries), raw.count("\n", 0, match.start()) + 1))
    if not found and not failures and not lost:
        if BANNER in raw:
            return Snapshot(SOURCE, failures=(_no_gpu("no GPU block in the -q report"),)), {}
        return unrecognized(SOURCE, raw, "nvidia-smi -q output"), {}
    readings = unique([r for r, _ in found] + list(lost))
    return Snapshot(SOURCE, readings=readings, failures=failures), lines_of(found)


def _no_gpu(detail: str) -> ToolFailure:
    return ToolFailure(ToolProblem.NO_DEVICES, detail)


def _entries(lines: list[str]) -> Entries:
    """Each `Key : Value` (or heading) with the keys of the headings above it."""
    stack: list[tuple[int, str]] = []
    entries: Entries = []
    for line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        key, colon, value = stripped.partition(":")
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = (*(k for _, k in stack), key.strip())
        entries.append((path, value.strip() if colon else None))
        stack.append((indent, key.strip()))
    return entries


def _q_reading(header_bus: str, entries: Entries) -> GpuReading:
    fields: dict[tuple[str, ...], str | None] = {}
    for path, value in entries:
        fields.setdefault(path, value)
    get = fields.get
    tokens = {token(v) for _, v in entries if v is not None}
    volatile = [(p[-1], v) for p, v in entries if len(p) == 3 and p[:2] == _VOLATILE]
    return GpuReading(
        gpu=GpuId(uuid=known(get(("GPU UUID",))), bus_id=bus(get(("PCI", "Bus Id")) or header_bus)),
        name=known(get(("Product Name",))),
        lost=LOST in tokens,
        reset_required=RESET in tokens or bool(yes_no(get(("GPU Reset Status", "Reset Required")))),
        ecc_uncorrected_volatile=_ecc(
            [v for key, v in volatile if "uncorrectable" in key.lower()],
            get(("ECC Errors", "Volatile", "Double Bit", "Total")),
        ),
        remapped_rows_pending=yes_no(get(("Remapped Rows", "Pending"))),
        remapped_rows_failure=yes_no(get(("Remapped Rows", "Remapping Failure Occurred"))),
        retired_pages_pending=any_true(
            yes_no(v) for p, v in entries if p[0] == "Retired Pages" and "Pending" in p[-1]
        ),
        recovery_action=_recovery(
            get(("GPU Recovery Action",)), get(("GPU Reset Status", "Drain and Reset Recommended"))
        ),
        pcie_replays=integer(get(("PCI", "Replays Since Reset"))),
        thermal_slowdown=any_true(
            active(v) for p, v in entries if p[0] in _CLOCKS and p[-1] in _THERMAL
        ),
        odd_fields=tuple(" / ".join(p) for p, v in entries if token(v) in ODD and v is not None),
    )  # fmt: skip


def _ecc(counts: list[str | None], double_bit_total: str | None) -> int | None:
    """The volatile uncorrectable count: Double Bit Total (old layouts) or the sum of the
    SRAM/DRAM uncorrectable counts; None when none of them is a number."""
    if double_bit_total is not None:
        return integer(double_bit_total)
    numbers = [n for n in map(integer, counts) if n is not None]
    return sum(numbers) if numbers else None


def _recovery(action: str | None, drain_and_reset: str | None) -> Recovery | None:
    if action is not None:
        return recovery(action)
    return Recovery.DRAIN_AND_RESET if yes_no(drain_and_reset) else None


def parse_smi_xml(text: Text) -> Snapshot:
    return read_smi_xml(text)[0]


@guarded(SOURCE)
def read_smi_xml(text: Text) -> Located:
    raw = as_text(text)
    refused = too_large(SOURCE, raw)
    if refused:
        return refused, {}
    failures, lost = tool_messages(raw)
    start, end = raw.find("<nvidia_smi_log"), raw.rfind("</nvidia_smi_log>")
    if start < 0 or end < start:
        if failures or lost:
            return Snapshot(SOURCE, readings=lost, failures=failures), {}
        return unrecognized(SOURCE, raw, "nvidia-smi -q -x XML"), {}
    # From the root element on: the DOCTYPE (and any entity it could declare) is left out.
    root = ET.fromstring(raw[start : end + len("</nvidia_smi_log>")])
    found = [(_xml_reading(gpu), _xml_line(raw, gpu)) for gpu in root.findall("gpu")]
    if not found and not lost:
        failures += (_no_gpu("no <gpu> element in the -q -x report"),)
    readings = unique([r for r, _ in found] + list(lost))
    return Snapshot(SOURCE, readings=readings, failures=failures), lines_of(found)


def _xml_line(raw: str, gpu: ET.Element) -> int:
    at = raw.find(f'<gpu id="{gpu.get("id", "")}"')
    return raw.count("\n", 0, at) + 1 if at >= 0 else 1


def _xml_reading(gpu: ET.Element) -> GpuReading:
    def get(path: str) -> str | None:
        return _text(gpu.find(path))

    everything = list(_walk(gpu))
    tokens = {token(v) for _, v in everything}
    return GpuReading(
        gpu=GpuId(uuid=known(get("uuid")), bus_id=bus(get("pci/pci_bus_id") or gpu.get("id"))),
        name=known(get("product_name")),
        lost=LOST in tokens,
        reset_required=RESET in tokens or bool(yes_no(get("gpu_reset_status/reset_required"))),
        ecc_uncorrected_volatile=_xml_ecc(gpu.find("ecc_errors/volatile")),
        remapped_rows_pending=yes_no(get("remapped_rows/remapped_row_pending")),
        remapped_rows_failure=yes_no(get("remapped_rows/remapped_row_failure")),
        retired_pages_pending=any_true(
            yes_no(get(f"retired_pages/{tag}")) for tag in _PENDING_PAGES
        ),
        recovery_action=_recovery(
            get("gpu_recovery_action"), get("gpu_reset_status/drain_and_reset_recommended")
        ),
        pcie_replays=integer(get("pci/replay_counter")),
        thermal_slowdown=any_true(
            active(v) for p, v in everything if p.startswith("clocks_") and "_reasons/" in p and
            p.endswith(("hw_thermal_slowdown", "sw_thermal_slowdown"))
        ),
        odd_fields=tuple(p for p, v in everything if token(v) in ODD),
    )  # fmt: skip


def _text(element: ET.Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    return element.text.strip()


def _xml_ecc(volatile: ET.Element | None) -> int | None:
    if volatile is None:
        return None
    counts = [_text(child) for child in volatile if "uncorrectable" in child.tag]
    return _ecc(counts, _text(volatile.find("double_bit/total")))


def _walk(root: ET.Element) -> Iterator[tuple[str, str]]:
    """(slash path below ``root``, text) of every element with text, without recursion."""
    stack = [(child, child.tag) for child in reversed(root)]
    while stack:
        element, path = stack.pop()
        text = (element.text or "").strip()
        if text:
            yield path, text
        stack.extend((child, f"{path}/{child.tag}") for child in reversed(element))
