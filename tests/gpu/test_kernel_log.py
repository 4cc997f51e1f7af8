"""Which GPU a kernel NVRM line names, in each form the driver prints."""

import pytest

from tests.conftest import FIXTURES
from watcher.gpu.kernel_log import bus_id_named


@pytest.mark.parametrize(
    ("line", "bus_id"),
    [
        ("NVRM: Xid (PCI:0000:9b:00): 119, pid=2024380, name=nvidia-smi, Timeout", "0000:9b:00"),
        ("[ 12.3] NVRM: Xid (0000:03:00): 14, Channel 00000001", "0000:03:00"),
        ("NVRM: Xid (PCI:0000:3B:00 GPU-I:1): 94, pid=7, name=python, Contained", "0000:3b:00"),
        ("NVRM: Xid (PCI:0018:01:00): 149, NETIR_LINK_EVT Fatal XC0 i0 Link 08", "0018:01:00"),
        ("NVRM: GPU at PCI:0000:9b:00: GPU-5a1b7c2e-0c1d-4e5f-8a9b-0c1d2e3f4a50", "0000:9b:00"),
        ("NVRM: GPU 0000:3b:00.0: GPU has fallen off the bus.", "0000:3b:00"),
        (
            "NVRM: The NVIDIA GPU 00000000:B3:00.0 (PCI ID: 10de:26b5) installed in this "
            "system has fallen off the bus and is not responding to commands.",
            "0000:b3:00",
        ),
    ],
)
def test_the_bus_id_an_nvrm_line_names(line: str, bus_id: str) -> None:
    assert bus_id_named(line) == bus_id


@pytest.mark.parametrize(
    "line",
    [
        "NCCL WARN Watchdog caught collective operation timeout on 0000:3b:00",
        "RuntimeError: CUDA error: an illegal memory access was encountered",
        "NVRM: loading NVIDIA UNIX x86_64 Kernel Module  535.183.01",
        "NVRM: Xid (PCI:zz:00): 79",
        "",
    ],
)
def test_lines_that_name_no_gpu(line: str) -> None:
    assert bus_id_named(line) is None


@pytest.mark.parametrize(
    ("capture", "bus_ids"),
    [
        ("dmesg-xid119-gsp-rpc-timeout-h100.log", {"0000:9b:00"}),
        ("dmesg-iso-xid13-xid43-app-fault.log", {"0000:38:00"}),
    ],
)
def test_every_xid_line_of_the_real_captures_names_its_gpu(capture: str, bus_ids: set[str]) -> None:
    lines = (FIXTURES / capture).read_text("utf-8", "replace").splitlines()
    xids = [line for line in lines if "NVRM: Xid" in line]
    assert xids
    assert {bus_id_named(line) for line in xids} == bus_ids
