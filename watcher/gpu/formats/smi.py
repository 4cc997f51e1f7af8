"""Any nvidia-smi output, told apart by its content -> Snapshot.

Public:

* `smi_format(text) -> str`: `xml` (`-q -x`), `q` (`-q`), `table` (no arguments) or
  `csv` (`--query-gpu ... --format=csv` with its header).
* `parse_smi_any(text) -> Snapshot`, `read_smi_any(text) -> (Snapshot, lines)`: parse
  with the matching parser. CSV without a header cannot be told apart from garbage: use
  `parse_query_csv(text, fields)` for it. nvidia-smi's own failure messages (driver not
  loaded, NVML missing...) are understood by every parser. Never raises.
"""

from typing import Final

from watcher.gpu.formats.common import Located, Text, as_text, guarded
from watcher.gpu.formats.smi_csv import read_query_csv
from watcher.gpu.formats.smi_q import BANNER, GPU_HEADER, read_smi_q, read_smi_xml
from watcher.gpu.formats.smi_table import looks_like_table, read_smi_table
from watcher.gpu.model import Snapshot

SOURCE: Final = "nvidia-smi"


def smi_format(text: Text) -> str:
    raw = as_text(text)
    if "<nvidia_smi_log" in raw:
        return "xml"
    if BANNER in raw or GPU_HEADER.search(raw):
        return "q"
    if looks_like_table(raw):
        return "table"
    return "csv"


def parse_smi_any(text: Text) -> Snapshot:
    return read_smi_any(text)[0]


@guarded(SOURCE)
def read_smi_any(text: Text) -> Located:
    readers = {"xml": read_smi_xml, "q": read_smi_q, "table": read_smi_table}
    return readers.get(smi_format(text), read_query_csv)(text)
