"""The xid pack classes each Xid as NVIDIA's catalog does and respects number boundaries."""

import pytest

from watcher.rules.matcher import RuleMatcher
from watcher.rules.packs import load_pack
from watcher.types import FaultClass, Severity

RULES = {rule.reason: rule for rule in load_pack("xid")}
MATCHER = RuleMatcher(load_pack("xid"))


def reasons(line: str) -> list[str]:
    return [hit.rule.reason for hit in MATCHER.scan(line.encode() + b"\n")]


def xid(code: int, text: str = "pid=1234, name=python3, something happened") -> str:
    return f"[ 4412.000123] NVRM: Xid (PCI:0000:3b:00): {code}, {text}"


FATAL = [
    ("XidGpuFallenOffBus", xid(79, "pid='<unknown>', name=<unknown>, GPU has fallen off the bus.")),
    ("XidGpuFallenOffBus", "NVRM: Xid (0000:03:00): 79, GPU has fallen off the bus."),
    ("XidGpuFallenOffBus", "NVRM: Xid (PCI:0000:01:00): 79"),
    ("XidGpuFallenOffBus", "[ 1.0] NVRM: GPU 0000:3b:00.0: GPU has fallen off the bus."),
    ("XidGpuFallenOffBus", "NVRM: GPU at 0000:02:00.0 has fallen off the bus."),
    ("XidGpuFallenOffBus", "kernel: NVRM: fallen off the bus and is not responding to commands."),
    (
        "XidGpuFallenOffBus",
        "NVRM: The NVIDIA GPU 0000:b3:00.0 (PCI ID: 10de:2330) installed in this system has "
        "fallen off the bus and is not responding to commands.",
    ),
    (
        "XidUncorrectableMemoryError",
        xid(48, "An uncorrectable double bit error (DBE) has been detected on GPU in the FB"),
    ),
    ("XidUncorrectableMemoryError", xid(64, "Row Remapper: remapping failed")),
    ("XidUncorrectableMemoryError", xid(95, "Uncontained: LTC TAG (0x2, 0x1). RST: Yes")),
    ("XidUncorrectableMemoryError", xid(140, "ECC unrecovered error")),
    ("XidUncorrectableMemoryError", xid(171, "HBM, Uncorrectable DRAM error in FBPA 3")),
    ("XidUncorrectableMemoryError", xid(94, "Contained: SM (0x1). RST: Yes, D-RST: No")),
    ("XidUncorrectableMemoryError", xid(94, "Contained: SM (0x1). RST: No, D-RST: Yes")),
    (
        "XidGpuResetRequired",
        "Nov 26 10:00:00 node kernel: NVRM: Xid (PCI:0000:9b:00): 119, pid=2024380, "
        "name=nvidia-smi, Timeout after 6s of waiting for RPC response from GPU4 GSP!",
    ),
    ("XidGpuResetRequired", xid(120, "GSP Error: Task 1 raised error code 0x5")),
    ("XidGpuResetRequired", xid(109, "Ch 00000008, errorString CTX SWITCH TIMEOUT, Info 0x1c084")),
    ("XidGpuResetRequired", xid(46)),
    ("XidGpuResetRequired", xid(62)),
    ("XidGpuResetRequired", xid(143)),
    ("XidGpuResetRequired", xid(158)),
    (
        "XidGpuResetRequired",
        "NVRM: Rate limiting GSP RPC error prints for GPU at PCI:0000:9b:00 (printing 1 of every "
        "30).  The GPU likely needs to be reset.",
    ),
    (
        "XidNvlinkError",
        xid(74, "NVLink: fatal error detected on link 14(0x0, 0x0, 0x10000, 0x0, 0x0, 0x0, 0x0)"),
    ),
    (
        "XidNvlinkError",
        "NVRM: Xid (PCI:0018:01:00): 149, NETIR_LINK_EVT Fatal XC0 i0 Link 08 "
        "(0x004505c6 0x00000000 0x00000000 0x00000000)",
    ),
    (
        "XidNvlinkError",
        "NVRM: Xid (PCI:0000:04:00): 150, MSE_WATCHDOG Fatal XC0 i0 Link 00 "
        "(0x00000000 0x00000000 0x00000000 0x00000000)",
    ),
    (
        "XidRecoveryActionRequired",
        xid(154, "GPU recovery action changed from 0x0 (None) to 0x2 (Node Reboot Required)"),
    ),
    (
        "XidRecoveryActionRequired",
        xid(154, "GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)"),
    ),
    ("XidRecoveryActionRequired", "NVRM: Xid (PCI:0000:02:00): 154, Node Reboot Required"),
    (
        "XidContainedMemoryError",
        "NVRM: Xid (PCI:0000:01:00 GPU-I:05): 94, pid=7194, Contained: CE User Channel (0x9). "
        "RST: No, D-RST: No",
    ),
]

NOT_FATAL = [
    xid(13, "Graphics SM Warp Exception on (GPC 9, TPC 1, SM 0): Out Of Range Address"),
    xid(31, "Ch 00000018, intr 00000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted"),
    xid(43, "Ch 00000008"),
    xid(45, "Ch 00000008"),
    "NVRM: Xid (0000:02:00): 43, Ch 00000020, engmask 00000101",
    xid(63, "Row Remapper: New row (0x1) marked for remapping, reset gpu to activate."),
    xid(92, "High single-bit ECC error rate"),
    "NVRM: Xid (PCI:0000:04:00): 146, TLW_CTRL Nonfatal XC0 i0 Link 00 (0x00000009 0x00000001)",
    xid(154, "GPU recovery action changed from 0x1 (GPU Reset Required) to 0x0 (None)"),
    xid(61, "Internal micro-controller warning"),
    xid(121, "C2C Error"),
    xid(160, "Channel Retirement Event"),
    "gpu-health: scanning kernel log for 'NVRM: Xid' and 'fallen off the bus': 0 matches",
    "NVRM: GPU at PCI:0000:9b:00: GPU-509665ad-b600-ac93-3616-d754b23d636d",
    "NVRM: loading NVIDIA UNIX Open Kernel Module for x86_64  550.127.05",
]


@pytest.mark.parametrize(("reason", "line"), FATAL)
def test_fires_on_each_class_of_xid(reason: str, line: str) -> None:
    assert reasons(line)[:1] == [reason], line
    assert RULES[reason].severity is Severity.FATAL


@pytest.mark.parametrize("line", NOT_FATAL)
def test_application_and_informational_xids_never_act(line: str) -> None:
    hits = list(MATCHER.scan(line.encode() + b"\n"))
    assert all(hit.rule.severity is not Severity.FATAL for hit in hits), line


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (119, "XidGpuResetRequired"),
        (11, "XidApplicationFault"),
        (1190, None),
        (1, None),
        (19, None),
        (4, None),
        (480, None),
        (9, None),
        (940, None),
        (15, None),
        (154, "XidRecoveryActionRequired"),
        (1540, None),
        (14, None),
        (143, "XidGpuResetRequired"),
        (151, "XidGpuResetRequired"),
        (152, None),
        (79, "XidGpuFallenOffBus"),
        (7, None),
        (790, None),
        (130, "XidApplicationFault"),
        (136, "XidGpuResetRequired"),
        (137, None),
        (139, "XidApplicationFault"),
    ],
)
def test_xid_number_boundaries(code: int, reason: str | None) -> None:
    assert reasons(xid(code)) == ([reason] if reason else [])


@pytest.mark.parametrize(
    "prefix",
    [
        "[ 8812.004530] ",
        "[Sun Feb 23 16:24:18 2025] ",
        "kern  :warn  : 2025-01-21T02:21:33,498559+00:00 ",
        "Nov 26 10:00:00 gpu-node-7 kernel: ",
        "kernel: [16450076.435595] ",
        "3,18234,912334455690,-;",
        "\x1b[0;1;31m",
        "",
    ],
)
@pytest.mark.parametrize("bus", ["PCI:0000:3b:00", "0000:3b:00", "PCI:0018:01:00 GPU-I:03"])
def test_kernel_log_prefixes_and_bus_id_forms(prefix: str, bus: str) -> None:
    line = f"{prefix}NVRM: Xid ({bus}): 48, pid=1, name=x, An uncorrectable double bit error"
    assert reasons(line) == ["XidUncorrectableMemoryError"]


def test_fault_classes_follow_the_catalog() -> None:
    hardware = {
        "XidGpuFallenOffBus",
        "XidUncorrectableMemoryError",
        "XidGpuResetRequired",
        "XidNvlinkError",
        "XidRecoveryActionRequired",
        "XidNvlinkNonfatal",
        "XidRowRemapPending",
        "XidHighSbeRate",
    }
    for reason, rule in RULES.items():
        assert (rule.fault_class is FaultClass.HARDWARE) == (reason in hardware), reason
    assert RULES["XidContainedMemoryError"].fault_class is FaultClass.TRANSIENT
    assert RULES["XidApplicationFault"].fault_class is FaultClass.APPLICATION
    assert RULES["XidApplicationFault"].severity is Severity.WARNING
    assert RULES["XidChannelTeardown"].severity is Severity.INFO
    assert RULES["XidRowRemapPending"].severity is Severity.WARNING
    assert RULES["XidHighSbeRate"].severity is Severity.WARNING


def test_every_rule_anchors_on_the_driver_prefix() -> None:
    for rule in RULES.values():
        assert "NVRM: " in rule.pattern
        assert not rule.pattern.startswith("^")
