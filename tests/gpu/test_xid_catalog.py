"""The Xid catalog and the `xid` pack agree, Xid by Xid: a kernel line of any number hits
the rule of that number's class (or none, for a number in no class), with the class's
severity and fault class; and the catalog follows NVIDIA's buckets."""

import pytest

from watcher.gpu import xids
from watcher.gpu.xids import CLASSES, LINE_REFINEMENTS, UNLISTED, XidClass, xid_class
from watcher.rules.matcher import RuleMatcher
from watcher.rules.packs import load_pack
from watcher.types import FaultClass, Severity

PACK = {rule.reason: rule for rule in load_pack("xid")}
MATCHER = RuleMatcher(load_pack("xid"))
NUMBERS = range(256)
FORMS = (
    "[ 4412.000123] NVRM: Xid (PCI:0000:3b:00): {n}, pid=1234, name=python3, {text}",
    "NVRM: Xid (0000:03:00): {n}, {text}",
    "kernel: NVRM: Xid (PCI:0018:01:00 GPU-I:03): {n}, {text}",
    "NVRM: Xid (PCI:0000:3b:00): {n}",
)
"""The shapes the driver prints (with and without `PCI:`, pid/name, MIG, any text)."""
FATAL_TEXT = {n: "NETIR_LINK_EVT Fatal XC0 i0 Link 08" for n in xids.WORKFLOW_NVLINK5_ERR}
"""An NVLink5 line counts as its bare number only when the driver marks it Fatal."""


def first_hit(line: str) -> str | None:
    hits = [hit.rule.reason for hit in MATCHER.scan(line.encode() + b"\n")]
    return hits[0] if hits else None


def expected(cls: XidClass) -> str | None:
    return None if cls is UNLISTED else cls.reason


@pytest.mark.parametrize("form", FORMS)
def test_every_xid_number_hits_the_rule_of_its_class(form: str) -> None:
    for n in NUMBERS:
        text = FATAL_TEXT.get(n, "something happened")
        if n in xids.WORKFLOW_NVLINK5_ERR and "{text}" not in form:
            continue  # an NVLink5 line without its text says neither Fatal nor not
        line = form.format(n=n, text=text)
        assert first_hit(line) == expected(xid_class(n)), line


@pytest.mark.parametrize(("numbers", "text", "refined"), LINE_REFINEMENTS)
def test_what_a_kernel_line_adds_to_its_number(
    numbers: frozenset[int], text: str, refined: XidClass | None
) -> None:
    for n in numbers:
        line = FORMS[0].format(n=n, text=text)
        assert first_hit(line) == (None if refined is None else refined.reason), line


def test_each_class_is_one_rule_with_its_severity_and_fault_class() -> None:
    assert set(PACK) == {cls.reason for cls in CLASSES}
    for cls in CLASSES:
        rule = PACK[cls.reason]
        assert (rule.severity, rule.fault_class) == (cls.severity, cls.fault_class), cls.reason


def test_no_xid_is_in_two_classes() -> None:
    seen: dict[int, str] = {}
    for cls in CLASSES:
        for n in cls.xids:
            assert n not in seen, (n, seen.get(n), cls.reason)
            seen[n] = cls.reason


def test_restarting_in_place_is_never_the_answer_to_a_gpu_or_node_bucket() -> None:
    needs_the_gpu_seen_to = (
        xids.RESET_GPU
        | xids.RESTART_BM
        | xids.RESTART_VM
        | xids.WORKFLOW_XID_48
        | xids.WORKFLOW_NVLINK_ERR
        | xids.WORKFLOW_NVLINK5_ERR
        | xids.XID_154
        | xids.CHECK_MECHANICALS
    )
    for n in needs_the_gpu_seen_to:
        cls = xid_class(n)
        assert (cls.severity, cls.fault_class) == (Severity.FATAL, FaultClass.HARDWARE), n
    for n in xids.RESTART_APP:
        assert xid_class(n).fault_class is not FaultClass.HARDWARE, n


def test_a_number_the_catalog_calls_unused_is_unlisted() -> None:
    # NVTELEMETRY_DRIVER_REPORT, "Unused", bucket CONTACT_SUPPORT: not a fault of the program
    assert xid_class(87) is UNLISTED
    assert xid_class(0) is UNLISTED and xid_class(999) is UNLISTED  # 999: NVML's unknown Xid
    assert (UNLISTED.severity, UNLISTED.fault_class) == (Severity.WARNING, FaultClass.HARDWARE)
