"""No parser raises, whatever it is given: text, bytes, or real-looking output mangled."""

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.gpu.samples import (
    CSV_HEALTHY,
    DCGMI_DIAG_FAIL,
    DCGMI_JSON,
    DCGMI_NEW,
    DCGMI_OLD,
    EXPORTER,
    Q_HEALTHY,
    TABLE,
    XML_V11,
    XML_V12_MIG,
    XML_V13,
)
from watcher.gpu.formats.common import Text
from watcher.gpu.formats.dcgm_exporter import parse_exporter
from watcher.gpu.formats.dcgmi import parse_dcgmi_health
from watcher.gpu.formats.smi import parse_smi_any
from watcher.gpu.formats.smi_csv import QUERY_FIELDS, parse_query_csv
from watcher.gpu.formats.smi_q import parse_smi_q, parse_smi_xml
from watcher.gpu.formats.smi_table import parse_smi_table
from watcher.gpu.model import Snapshot
from watcher.gpu.replay import classify_once


def _noheader(text: Text) -> Snapshot:
    return parse_query_csv(text, QUERY_FIELDS)


PARSERS: tuple[Callable[[Text], Snapshot], ...] = (
    parse_query_csv,
    _noheader,
    parse_smi_q,
    parse_smi_xml,
    parse_smi_table,
    parse_smi_any,
    parse_exporter,
    parse_dcgmi_health,
)
SAMPLES = (
    CSV_HEALTHY,
    ", ".join(QUERY_FIELDS) + "\n"
    "GPU-1, 00000000:01:00.0, 0, x, [GPU is lost], Yes, No, [N/A], Active, Not Active, Reset\n",
    Q_HEALTHY,
    XML_V11.format(thermal="Active", sram="1", pending="Yes", failure="No", power="1 W"),
    XML_V12_MIG.format(reset="Yes", drain="No"),
    XML_V13.format(action="Reset", parity="1", secded="N/A", dram="[Unknown Error]"),
    TABLE,
    EXPORTER,
    DCGMI_NEW,
    DCGMI_OLD,
    DCGMI_JSON,
    DCGMI_DIAG_FAIL,
)
SNIPPETS = st.sampled_from(
    ["", "\n", ":", " : ", ",", "|", "[GPU is lost]", "Unknown Error", "ERR!", "N/A", "<gpu>",
     "</gpu>", "<nvidia_smi_log>", "{", "}", '"', "-> 0", "GPU ID: 1", "GPU 0000:01:00.0\n",
     "9223372036854775794", "nan", "-1", "\x00", "\ufffd", "Yes", "0x7fffffff", "{a=\"b\"}"]
)  # fmt: skip


def check(text: Text) -> None:
    for parse in PARSERS:
        snapshot = parse(text)
        assert isinstance(snapshot, Snapshot)
        classify_once(snapshot)


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_arbitrary_text(text: str) -> None:
    check(text)


@settings(max_examples=150, deadline=None)
@given(st.binary())
def test_arbitrary_bytes(data: bytes) -> None:
    check(data)


@st.composite
def mangled(draw: st.DrawFn) -> str:
    """A sample output with pieces cut, repeated, replaced or inserted."""
    text = draw(st.sampled_from(SAMPLES))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        end = draw(st.integers(at, min(len(text), at + 80)))
        action = draw(st.sampled_from(["cut", "repeat", "replace", "insert", "truncate"]))
        if action == "cut":
            text = text[:at] + text[end:]
        elif action == "repeat":
            text = text[:end] + text[at:end] + text[end:]
        elif action == "replace":
            text = text[:at] + draw(SNIPPETS) + text[end:]
        elif action == "insert":
            text = text[:at] + draw(st.one_of(SNIPPETS, st.text(max_size=20))) + text[at:]
        else:
            text = text[:at]
    return text


@settings(max_examples=400, deadline=None)
@given(mangled())
def test_mangled_real_looking_output(text: str) -> None:
    check(text)
    check(text.encode("utf-8", "surrogatepass"))


def test_every_sample_reads_cleanly() -> None:
    for sample in SAMPLES:
        readers = [p(sample) for p in PARSERS]
        assert any(s.readings for s in readers), sample[:80]
