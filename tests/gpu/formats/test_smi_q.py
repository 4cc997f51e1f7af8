"""`nvidia-smi -q`, `-q -x` across DTD versions, the default table, and telling them apart."""

import pytest

from tests.gpu.samples import (
    Q_BANNER,
    Q_HEALTHY,
    RESET_535,
    TABLE,
    UUID0,
    UUID1,
    XML_V11,
    XML_V12_MIG,
    XML_V13,
    q_block,
)
from watcher.gpu.formats.common import unparsed
from watcher.gpu.formats.smi import parse_smi_any, smi_format
from watcher.gpu.formats.smi_q import parse_smi_q, parse_smi_xml, read_smi_q, read_smi_xml
from watcher.gpu.formats.smi_table import parse_smi_table, read_smi_table
from watcher.gpu.model import GpuReading, Recovery, ToolProblem


def only(readings: tuple[GpuReading, ...]) -> GpuReading:
    (reading,) = readings
    return reading


def test_q_healthy_blocks() -> None:
    snapshot, lines = read_smi_q(Q_HEALTHY)
    first, second = snapshot.readings
    assert snapshot.failures == ()
    assert (first.gpu.uuid, first.gpu.bus_id) == (UUID0, "0000:3b:00")
    assert (second.gpu.uuid, second.gpu.bus_id) == (UUID1, "0000:9b:00")
    assert first.name == "NVIDIA H100 80GB HBM3"
    assert first.ecc_uncorrected_volatile == 0  # aggregate counts are not volatile
    assert first.remapped_rows_pending is False and first.remapped_rows_failure is False
    assert first.retired_pages_pending is None
    assert first.recovery_action is Recovery.NONE
    assert first.pcie_replays == 97
    assert first.thermal_slowdown is False  # the counters block is not the reasons block
    assert first.odd_fields == () and not first.lost and not first.reset_required
    block_line = Q_HEALTHY.splitlines().index("GPU 00000000:9B:00.0") + 1
    assert lines[second.gpu.label()] == block_line


def test_q_conditions() -> None:
    text = Q_BANNER + q_block(
        dram_unc="2",
        remap="Pending                           : Yes",
        thermal="Active",
        reset="    GPU Recovery Action                   : Drain and Reset\n",
    )
    reading = only(parse_smi_q(text).readings)
    assert reading.ecc_uncorrected_volatile == 2
    assert reading.remapped_rows_pending is True
    assert reading.thermal_slowdown is True
    assert reading.recovery_action is Recovery.DRAIN_AND_RESET


@pytest.mark.parametrize(
    ("required", "drain", "reset", "action"),
    [
        ("No", "No", False, None),
        ("Yes", "No", True, None),
        ("No", "Yes", False, Recovery.DRAIN_AND_RESET),
        ("No", "N/A", False, None),
    ],
)
def test_q_535_reset_status(
    required: str, drain: str, reset: bool, action: Recovery | None
) -> None:
    text = Q_BANNER + q_block(reset=RESET_535.format(required=required, drain=drain))
    reading = only(parse_smi_q(text).readings)
    assert (reading.reset_required, reading.recovery_action) == (reset, action)


def test_q_unknown_error_field_is_odd_not_fatal() -> None:
    reading = only(parse_smi_q(Q_BANNER + q_block(addressing="Unknown Error")).readings)
    assert reading.odd_fields == ("Addressing Mode",)
    assert not reading.lost and not reading.reset_required


def test_q_requires_reset_and_lost_values() -> None:
    reset = only(parse_smi_q(Q_BANNER + q_block(dram_unc="GPU requires reset")).readings)
    assert reset.reset_required and reset.ecc_uncorrected_volatile == 0
    lost = only(parse_smi_q(Q_BANNER + q_block(thermal="[GPU is lost]")).readings)
    assert lost.lost and lost.thermal_slowdown is False


def test_q_mig_remapped_rows_na_and_old_double_bit_layout() -> None:
    text = Q_BANNER + q_block().replace(
        "    Remapped Rows\n", "    Remapped Rows                         : N/A\n    Ignored\n"
    )
    mig = only(parse_smi_q(text).readings)
    assert mig.remapped_rows_pending is None and mig.remapped_rows_failure is None
    old = """GPU 00000000:04:00.0
    Product Name                          : Tesla V100-SXM2-16GB
    GPU UUID                              : GPU-0ld
    Clocks Throttle Reasons
        SW Thermal Slowdown               : Active
    ECC Errors
        Volatile
            Single Bit
                Device Memory             : 5
                Total                     : 5
            Double Bit
                Device Memory             : 1
                Total                     : 1
    Retired Pages
        Single Bit ECC                    : 0
        Double Bit ECC                    : 0
        Pending Page Blacklist            : Yes
"""
    reading = only(parse_smi_q(old).readings)
    assert reading.ecc_uncorrected_volatile == 1
    assert reading.retired_pages_pending is True
    assert reading.thermal_slowdown is True
    assert reading.gpu.bus_id == "0000:04:00"


def test_q_failures() -> None:
    lost = "Unable to determine the device handle for gpu 0000:3B:00.0: GPU is lost.  Reboot the system to recover this GPU\n"  # noqa: E501
    snapshot = parse_smi_q(Q_BANNER + q_block("00000000:9B:00.0", UUID1) + lost)
    assert [(r.gpu.bus_id, r.lost) for r in snapshot.readings] == [
        ("0000:9b:00", False),
        ("0000:3b:00", True),
    ]
    empty = parse_smi_q(Q_BANNER.replace(": 2", ": 0"))
    assert [f.problem for f in empty.failures] == [ToolProblem.NO_DEVICES]
    assert unparsed(parse_smi_q("nothing to see")) is not None


def test_xml_v11_throttle_reasons_and_power_readings() -> None:
    text = XML_V11.format(thermal="Active", sram="1", pending="Yes", failure="No", power="60 W")
    snapshot, lines = read_smi_xml(text)
    reading = only(snapshot.readings)
    assert (reading.gpu.bus_id, reading.name) == ("0000:00:1e", "NVIDIA A10G")
    assert reading.thermal_slowdown is True
    assert reading.ecc_uncorrected_volatile == 1
    assert reading.retired_pages_pending is True
    assert reading.remapped_rows_failure is False
    assert reading.pcie_replays == 3
    assert lines == {reading.gpu.label(): 6}


def test_xml_v11_unknown_error_and_tokens() -> None:
    text = XML_V11.format(
        thermal="Not Active", sram="N/A", pending="N/A", failure="Yes", power="Unknown Error"
    )
    reading = only(parse_smi_xml(text).readings)
    assert reading.odd_fields == ("power_readings/power_draw",)
    assert reading.ecc_uncorrected_volatile == 0
    assert reading.retired_pages_pending is None
    assert reading.remapped_rows_failure is True


def test_xml_v12_mig_attached_gpus_exceeds_gpu_elements() -> None:
    reading = only(parse_smi_xml(XML_V12_MIG.format(reset="No", drain="No")).readings)
    assert reading.remapped_rows_pending is None and reading.remapped_rows_failure is None
    assert reading.ecc_uncorrected_volatile == 0  # the MIG devices' counts are not added
    assert not reading.reset_required and reading.recovery_action is None
    reset = only(parse_smi_xml(XML_V12_MIG.format(reset="Yes", drain="Yes")).readings)
    assert reset.reset_required and reset.recovery_action is Recovery.DRAIN_AND_RESET


@pytest.mark.parametrize(
    ("action", "expected"),
    [("None", Recovery.NONE), ("Reset", Recovery.GPU_RESET), ("Reboot", Recovery.NODE_REBOOT)],
)
def test_xml_v13_recovery_action_and_split_sram_counts(action: str, expected: Recovery) -> None:
    text = XML_V13.format(action=action, parity="1", secded="2", dram="N/A")
    reading = only(parse_smi_xml(text).readings)
    assert reading.recovery_action is expected
    assert reading.ecc_uncorrected_volatile == 3


@pytest.mark.parametrize(
    "text",
    [
        XML_V13.format(action="None", parity="0", secded="0", dram="0")[:300],
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]>'
        "<nvidia_smi_log>&a;</nvidia_smi_log>",
        "<nvidia_smi_log><gpu></nvidia_smi_log>",
        "<nvidia_smi_log>\x00</nvidia_smi_log>",
    ],
)
def test_xml_garbage_is_a_failure(text: str) -> None:
    snapshot = parse_smi_xml(text)
    assert snapshot.readings == ()
    assert [f.problem for f in snapshot.failures] == [ToolProblem.FAILED]


def test_xml_without_gpus_and_with_a_message_after_it() -> None:
    empty = parse_smi_xml("<nvidia_smi_log><attached_gpus>0</attached_gpus></nvidia_smi_log>")
    assert [f.problem for f in empty.failures] == [ToolProblem.NO_DEVICES]
    text = XML_V12_MIG.format(reset="No", drain="No")
    text += "Unable to determine the device handle for GPU0000:02:00.0: Unknown Error\n"
    readings = parse_smi_xml(text).readings
    assert [r.lost for r in readings] == [False, True]


def test_table_rows_and_err_cells() -> None:
    snapshot, lines = read_smi_table(TABLE)
    first, second = snapshot.readings
    assert (first.gpu.index, first.gpu.bus_id, first.name) == (
        0,
        "0000:19:00",
        "NVIDIA H100 80GB HBM3",
    )
    assert first.ecc_uncorrected_volatile == 2 and first.odd_fields == ()
    assert second.ecc_uncorrected_volatile is None
    assert second.odd_fields == ("Volatile Uncorr. ECC", "Fan", "Temp", "Pwr:Usage/Cap", "MIG M.")
    assert lines == {first.gpu.label(): 9, second.gpu.label(): 13}
    assert unparsed(parse_smi_table("+---+\n| NVIDIA-SMI x | Bus-Id |\n")) is not None


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (Q_HEALTHY, "q"),
        (q_block(), "q"),
        (XML_V12_MIG, "xml"),
        (TABLE, "table"),
        ("uuid, name\nGPU-1, A100\n", "csv"),
        ("", "csv"),
    ],
)
def test_formats_are_told_apart_by_content(text: str, kind: str) -> None:
    assert smi_format(text) == kind
    assert smi_format(text.encode()) == kind


def test_parse_smi_any_dispatches() -> None:
    assert len(parse_smi_any(Q_HEALTHY).readings) == 2
    assert len(parse_smi_any(TABLE).readings) == 2
    assert len(parse_smi_any(XML_V12_MIG.format(reset="No", drain="No")).readings) == 1
    assert parse_smi_any("uuid, name\nGPU-1, A100\n").readings[0].gpu.uuid == "GPU-1"
