"""`nvidia-smi --query-gpu` CSV: columns by name or by the queried list, and the cell tokens."""

import pytest

from tests.gpu.samples import CSV_HEADER, CSV_HEALTHY, UUID0, UUID1
from watcher.gpu.formats.common import recovery, unparsed
from watcher.gpu.formats.smi_csv import (
    FALLBACK_FIELDS,
    QUERY_FIELDS,
    canonical,
    fallback_fields,
    parse_query_csv,
    read_query_csv,
    unknown_field,
)
from watcher.gpu.model import GpuReading, Recovery, ToolProblem


def row(**cells: str) -> str:
    """One `noheader,nounits` row of QUERY_FIELDS, healthy unless told otherwise."""
    values = {
        "uuid": UUID0,
        "pci.bus_id": "00000000:3B:00.0",
        "index": "0",
        "name": "NVIDIA A100-SXM4-80GB",
        "ecc.errors.uncorrected.volatile.total": "0",
        "remapped_rows.pending": "No",
        "remapped_rows.failure": "No",
        "retired_pages.pending": "[N/A]",
        "clocks_event_reasons.hw_thermal_slowdown": "Not Active",
        "clocks_event_reasons.sw_thermal_slowdown": "Not Active",
        "gpu_recovery_action": "None",
    }
    values.update({k.replace("__", "."): v for k, v in cells.items()})
    return ", ".join(values[f] for f in QUERY_FIELDS) + "\n"


def one(text: str) -> GpuReading:
    snapshot = parse_query_csv(text, QUERY_FIELDS)
    assert not snapshot.failures, snapshot.failures
    (reading,) = snapshot.readings
    return reading


def test_header_maps_columns_by_name_whatever_their_order_and_units() -> None:
    snapshot, lines = read_query_csv(CSV_HEALTHY)
    first, second = snapshot.readings
    assert (first.gpu.uuid, first.gpu.bus_id, first.gpu.index) == (UUID0, "0000:3b:00", 0)
    assert (second.gpu.uuid, second.gpu.bus_id, second.gpu.index) == (UUID1, "0000:9b:00", 1)
    assert first.name == "NVIDIA H100 80GB HBM3"
    assert first.ecc_uncorrected_volatile == 0
    assert (first.remapped_rows_pending, first.remapped_rows_failure) == (False, False)
    assert first.retired_pages_pending is None
    assert first.thermal_slowdown is False
    assert first.recovery_action is Recovery.NONE
    assert lines == {first.gpu.label(): 2, second.gpu.label(): 3}


def test_noheader_uses_the_queried_fields_and_skips_a_header_if_there_is_one() -> None:
    assert one(row()).gpu.uuid == UUID0
    header = ", ".join(QUERY_FIELDS) + "\n"
    assert one(header + row()).gpu.uuid == UUID0
    other = parse_query_csv("name, uuid\nA100, GPU-9\n", QUERY_FIELDS)  # the header wins
    assert [(r.name, r.gpu.uuid) for r in other.readings] == [("A100", "GPU-9")]


def test_old_names_and_aliases_in_the_header() -> None:
    text = (
        "gpu_uuid, gpu_bus_id, gpu_name, clocks_throttle_reasons.hw_thermal_slowdown\n"
        f"{UUID0}, 00000000:3B:00.0, Tesla V100, Active\n"
    )
    (reading,) = parse_query_csv(text).readings
    assert (reading.gpu.uuid, reading.gpu.bus_id, reading.name) == (
        UUID0,
        "0000:3b:00",
        "Tesla V100",
    )
    assert reading.thermal_slowdown is True
    assert canonical("clocks_event_reasons_counters.sw_power_cap [us]") == (
        "clocks_event_reasons_counters.sw_power_cap"
    )


@pytest.mark.parametrize(
    "cell",
    [
        "[N/A]",
        "N/A",
        "[Not Supported]",
        "[Requested functionality has been deprecated]",
        "[Insufficient Permissions]",
        "[Function Not Found]",
        "",
    ],
)
def test_tokens_that_only_mean_unknown(cell: str) -> None:
    reading = one(row(remapped_rows__pending=cell, ecc__errors__uncorrected__volatile__total=cell))
    assert reading.remapped_rows_pending is None
    assert reading.ecc_uncorrected_volatile is None
    assert reading.odd_fields == ()
    assert not reading.lost and not reading.reset_required


def test_unknown_error_is_unknown_and_named() -> None:
    reading = one(row(gpu_recovery_action="[Unknown Error]"))
    assert reading.recovery_action is None
    assert reading.odd_fields == ("gpu_recovery_action",)


def test_gpu_requires_reset_or_lost_in_any_cell() -> None:
    reset = one(row(remapped_rows__failure="[GPU requires reset]"))
    assert reset.reset_required and not reset.lost
    assert reset.remapped_rows_failure is None
    lost = one(row(**{f.replace(".", "__"): "[GPU is lost]" for f in QUERY_FIELDS[3:]}))
    assert lost.lost and not lost.reset_required
    assert lost.gpu.uuid == UUID0


def test_conditions() -> None:
    reading = one(
        row(
            remapped_rows__pending="Yes",
            remapped_rows__failure="Yes",
            retired_pages__pending="Yes",
            ecc__errors__uncorrected__volatile__total="3",
            clocks_event_reasons__sw_thermal_slowdown="Active",
        )
    )
    assert reading.remapped_rows_pending and reading.remapped_rows_failure
    assert reading.retired_pages_pending
    assert reading.ecc_uncorrected_volatile == 3
    assert reading.thermal_slowdown is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("None", Recovery.NONE),
        ("Reset", Recovery.GPU_RESET),
        ("GPU Reset", Recovery.GPU_RESET),
        ("Reboot", Recovery.NODE_REBOOT),
        ("Node Reboot Required", Recovery.NODE_REBOOT),
        ("Drain P2P", Recovery.DRAIN_P2P),
        ("Drain and Reset", Recovery.DRAIN_AND_RESET),
        ("drain_and_reset", Recovery.DRAIN_AND_RESET),
        ("Bus Reset", Recovery.OTHER),
        ("System Reboot", Recovery.OTHER),
        ("[N/A]", None),
        ("N/A", None),
    ],
)
def test_recovery_action_spellings(text: str, expected: Recovery | None) -> None:
    assert recovery(text) is expected
    assert one(row(gpu_recovery_action=text)).recovery_action is expected


def test_unknown_field_and_the_fallback_list() -> None:
    error = 'Field "gpu_recovery_action" is not a valid field to query.\n'
    assert unknown_field(error) == "gpu_recovery_action"
    assert unknown_field("fine") is None
    fewer = fallback_fields(QUERY_FIELDS, error)
    assert fewer is not None and "gpu_recovery_action" not in fewer
    renamed = 'Field "clocks_event_reasons.hw_thermal_slowdown" is not a valid field to query.'
    older = fallback_fields(QUERY_FIELDS, renamed)
    assert older is not None and "clocks_throttle_reasons.hw_thermal_slowdown" in older
    assert fallback_fields(QUERY_FIELDS, 'Field "nope" is not a valid field to query.') is None
    assert "gpu_recovery_action" not in FALLBACK_FIELDS
    assert all(not f.startswith("clocks_event_reasons.") for f in FALLBACK_FIELDS)
    (failure,) = parse_query_csv(error, QUERY_FIELDS).failures
    assert failure.problem is ToolProblem.FAILED
    assert "gpu_recovery_action" in failure.detail


def test_fallback_fields_parse_like_the_full_list() -> None:
    cells = [c.strip() for c in row(clocks_event_reasons__hw_thermal_slowdown="Active").split(",")]
    text = ", ".join(cells[: len(FALLBACK_FIELDS)]) + "\n"
    (reading,) = parse_query_csv(text, FALLBACK_FIELDS).readings
    assert reading.thermal_slowdown is True
    assert reading.recovery_action is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
            "Make sure that the latest NVIDIA driver is installed and running.\n",
            ToolProblem.DRIVER_NOT_LOADED,
        ),
        (
            "Failed to initialize NVML: Driver/library version mismatch\n",
            ToolProblem.VERSION_MISMATCH,
        ),
        ("No devices were found\n", ToolProblem.NO_DEVICES),
        (
            "NVIDIA-SMI couldn't find libnvidia-ml.so library in your system.\n",
            ToolProblem.LIBRARY_NOT_FOUND,
        ),
        ("Failed to initialize NVML: Unknown Error\n", ToolProblem.FAILED),
    ],
)
def test_nvidia_smi_failure_messages(text: str, problem: ToolProblem) -> None:
    for fields in (None, QUERY_FIELDS):
        snapshot = parse_query_csv(text, fields)
        assert [f.problem for f in snapshot.failures] == [problem]
        assert snapshot.readings == ()
        assert unparsed(snapshot) is None


def test_a_gpu_without_a_handle_is_lost_and_the_others_are_read() -> None:
    text = "Unable to determine the device handle for GPU0000:9B:00.0: Unknown Error\n" + row()
    readings = parse_query_csv(text, QUERY_FIELDS).readings
    assert [(r.gpu.bus_id, r.lost) for r in readings] == [
        ("0000:3b:00", False),
        ("0000:9b:00", True),
    ]
    first = "Unable to determine the device handle for GPU0000:9B:00.0: Unknown Error\n"
    readings = parse_query_csv(first + CSV_HEALTHY.replace(UUID1, "GPU-x")).readings
    assert [r.gpu.uuid for r in readings] == [UUID0, "GPU-x", None]
    other = "Unable to determine the device handle for GPU1: 0000:34:00.0: Unknown Error\n"
    (lost,) = parse_query_csv(other, QUERY_FIELDS).readings
    assert (lost.gpu.bus_id, lost.lost) == ("0000:34:00", True)


def test_rows_of_the_wrong_width_are_reported_not_guessed() -> None:
    snapshot = parse_query_csv(row() + "GPU-x, 00000000:01:00.0\n", QUERY_FIELDS)
    assert len(snapshot.readings) == 1
    (failure,) = snapshot.failures
    assert failure.problem is ToolProblem.FAILED and "cells" in failure.detail


@pytest.mark.parametrize("text", ["", "\n\n", "hello, world\n", "a,b\n1,2\n", CSV_HEADER + "\n"])
def test_garbage_is_a_failure_not_an_exception(text: str) -> None:
    snapshot = parse_query_csv(text)
    assert snapshot.readings == ()
    assert [f.problem for f in snapshot.failures] == [ToolProblem.FAILED]
    assert unparsed(snapshot)


def test_bytes_are_decoded_and_rows_are_kept_once_per_gpu() -> None:
    data = (CSV_HEALTHY + CSV_HEALTHY.split("\n", 1)[1]).encode()
    assert [r.gpu.uuid for r in parse_query_csv(data).readings] == [UUID0, UUID1]
