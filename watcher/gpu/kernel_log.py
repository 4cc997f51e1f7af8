"""Which GPU a kernel log line is about: the driver names it by PCI bus id.

`NVRM: Xid (PCI:0000:3b:00): 79, ...` (older drivers drop `PCI:`), `NVRM: GPU at
PCI:0000:3b:00: GPU-...`, `NVRM: GPU 0000:3b:00.0: GPU has fallen off the bus.` and
`NVRM: The NVIDIA GPU 0000:3b:00.0 (PCI ID: 10de:2330) installed in this system ...`.
A node's kernel log holds every GPU's lines; this says which one a line names, so the
policy can leave another Pod's GPU alone.
"""

import re

from watcher.gpu.model import normalize_bus_id

_BUS_ID = re.compile(
    r"NVRM: (?:Xid \(|GPU at |GPU |The NVIDIA GPU )(?:PCI:)?"
    r"([0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\.[0-9a-fA-F])?)\b"
)


def bus_id_named(line: str) -> str | None:
    """The normalized bus id (`0000:3b:00`) of the GPU an NVRM line names, if any."""
    match = _BUS_ID.search(line)
    return None if match is None else normalize_bus_id(match.group(1))
