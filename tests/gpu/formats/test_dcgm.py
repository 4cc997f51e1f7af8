"""dcgm-exporter metrics and dcgmi health / diag output."""

import json

import pytest

from tests.gpu.samples import (
    DCGMI_DIAG_FAIL,
    DCGMI_HEALTHY,
    DCGMI_JSON,
    DCGMI_NEW,
    DCGMI_OLD,
    EXPORTER,
    POD0,
    UUID0,
    exporter_series,
)
from watcher.gpu.formats.common import unparsed
from watcher.gpu.formats.dcgm_exporter import is_blank, parse_exporter
from watcher.gpu.formats.dcgmi import parse_dcgmi_health, read_dcgmi
from watcher.gpu.model import GpuId, Recovery, ToolProblem


def test_exporter_readings_per_uuid_without_blank_sentinels() -> None:
    snapshot = parse_exporter(EXPORTER)
    first, second = snapshot.readings
    assert snapshot.failures == ()
    assert first.gpu == GpuId(uuid=UUID0, bus_id="0000:3b:00", index=0)
    assert first.name == "NVIDIA H100 80GB HBM3"
    assert (first.xid, first.pcie_replays) == (0, 12)
    assert first.ecc_uncorrected_volatile is None  # 9223372036854775794: not supported
    assert first.remapped_rows_pending is None  # the int32 blank
    assert (first.remapped_rows_failure, first.recovery_action) == (False, Recovery.NONE)
    assert first.health == {"PCIE": "Warning", "MEM": "Healthy"}
    assert (second.xid, second.ecc_uncorrected_volatile) == (79, 2)
    assert second.remapped_rows_failure is True
    assert second.recovery_action is Recovery.NODE_REBOOT


def test_old_label_and_field_names_and_merged_series() -> None:
    text = (
        exporter_series("DCGM_FI_DEV_XID_ERROR", "13", 0, pod=POD0).replace("UUID=", "uuid=")
        + exporter_series("DCGM_FI_DEV_ROW_REMAP_FAILED", "0", 0, ',GPU_I_ID="1"')
        + exporter_series("DCGM_FI_DEV_ROW_REMAP_FAILED", "1", 0, ',GPU_I_ID="2"')
        + exporter_series("DCGM_FI_DEV_RETIRED_PENDING", "1", 0)
        + exporter_series("DCGM_FI_DEV_GPU_RECOVERY_ACTION", "6", 0)
        + exporter_series("DCGM_FI_DEV_GPU_TEMP", "nan", 0).replace("Hostname", "hostname")
    )
    (reading,) = parse_exporter(text).readings
    assert reading.xid == 13
    assert reading.remapped_rows_failure is True
    assert reading.retired_pages_pending is True
    assert reading.recovery_action is Recovery.OTHER


@pytest.mark.parametrize(
    ("value", "blank"),
    [(0.0, False), (12.0, False), (float(0x7FFFFFFFFFFFFFF0), True), (2147483632.0, True),
     (float("nan"), True), (float("inf"), True), (-1.0, True)],
)  # fmt: skip
def test_blank_sentinels(value: float, blank: bool) -> None:
    assert is_blank(value) is blank


def test_exporter_noise_and_garbage() -> None:
    noisy = "Handling connection for 9400\n" + EXPORTER
    assert len(parse_exporter(noisy).readings) == 2
    no_gpu = parse_exporter("# TYPE go_goroutines gauge\ngo_goroutines 12\n")
    assert [f.problem for f in no_gpu.failures] == [ToolProblem.NOT_LISTED]
    for garbage in ("", "<html>502 Bad Gateway</html>", "{{{", "\x00"):
        snapshot = parse_exporter(garbage)
        assert snapshot.readings == () and unparsed(snapshot), garbage


def test_dcgmi_health_current_layout() -> None:
    snapshot, lines = read_dcgmi(DCGMI_NEW)
    first, second = snapshot.readings
    assert first.gpu == GpuId(index=0)
    assert first.health == {"PCIe system": "Warning"}
    assert second.gpu == GpuId(index=3)
    assert second.health == {"Memory system": "Failure", "Thermal system": "Warning"}
    assert lines == {"GPU index 0": 6, "GPU index 3": 12}


def test_dcgmi_health_older_layout() -> None:
    first, second = parse_dcgmi_health(DCGMI_OLD).readings
    assert (first.gpu.index, first.health) == (0, {"PCIe system": "Warning"})
    assert (second.gpu.index, second.health) == (2, {"Memory system": "Failure"})


def test_dcgmi_health_json_and_healthy_reports() -> None:
    (reading,) = parse_dcgmi_health(DCGMI_JSON).readings
    assert (reading.gpu.index, reading.health) == (1, {"Driver": "Failure"})
    tree = json.loads(DCGMI_JSON)
    del tree["body"]["GPU"]["children"]["1"]["children"]
    (bare,) = parse_dcgmi_health(json.dumps(tree)).readings
    assert bare.health == {"GPU": "Failure"}
    healthy = parse_dcgmi_health(DCGMI_HEALTHY)
    assert healthy.readings == () and healthy.failures == ()
    assert parse_dcgmi_health('{"body": {"Overall Health": {"value": "Healthy"}}}').readings == ()


def test_dcgmi_diag() -> None:
    first, second = parse_dcgmi_health(DCGMI_DIAG_FAIL).readings
    assert first.health == {"diag memory": "Pass", "diag diagnostic": "Pass"}
    assert second.health == {"diag memory": "Fail", "diag diagnostic": "Skip"}


@pytest.mark.parametrize(
    "text",
    [
        "Error: Health watches not enabled. Please enable watches. \n",
        "Error: Unable to check health watches. Return: The Group is not found\n",
        "Error: unable to establish a connection to the specified host: localhost\n",
        "Unable to connect to host engine. Host engine connection invalid/disconnected.\n",
    ],
)
def test_dcgmi_errors_are_tool_failures(text: str) -> None:
    snapshot = parse_dcgmi_health(text)
    assert [f.problem for f in snapshot.failures] == [ToolProblem.FAILED]
    assert unparsed(snapshot) is None


@pytest.mark.parametrize("text", ["", "hello", "{", "[1, 2]", '{"body": []}', "| a | b |"])
def test_dcgmi_garbage(text: str) -> None:
    snapshot = parse_dcgmi_health(text)
    assert snapshot.readings == ()
    if text.startswith("{") and text != "{":
        assert snapshot.failures == ()  # valid JSON without incidents: nothing to say
    else:
        assert unparsed(snapshot)
