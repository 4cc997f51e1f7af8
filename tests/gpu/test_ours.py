"""Which GPUs are this Pod's: the configuration, a GPU matched by UUID or by the Pod's
exporter labels, and the bus ids learnt from the polls."""

import pytest

from tests.conftest import FIXTURES
from tests.gpu.samples import CSV_HEALTHY, EXPORTER, UUID0, UUID1
from watcher.gpu.formats.dcgm_exporter import read_exporter
from watcher.gpu.formats.smi_csv import parse_query_csv
from watcher.gpu.model import GpuId, GpuReading, Snapshot, ToolProblem
from watcher.gpu.ours import OurGpus, Whose, keep_gpus, our_uuids

A, B = "GPU-aaaa-0001", "GPU-bbbb-0002"


@pytest.mark.parametrize(
    ("configured", "visible", "expected"),
    [
        ((A,), f"{B}", (A,)),
        ((), f"{A},{B}", (A, B)),
        ((), f" {A} , {B} ", (A, B)),
        ((), "all", None),
        ((), "void", None),
        ((), "none", None),
        ((), "0,1", None),
        ((), "MIG-1234-5678", None),
        ((), f"{A},0", None),
        ((), "", None),
    ],
)
def test_our_gpus_come_from_the_setting_then_nvidia_visible_devices(
    configured: tuple[str, ...], visible: str, expected: tuple[str, ...] | None
) -> None:
    assert our_uuids(configured, {"NVIDIA_VISIBLE_DEVICES": visible}) == expected


def reading(uuid: str | None, bus: str, lost: bool = False) -> GpuReading:
    return GpuReading(GpuId(uuid=uuid, bus_id=bus), lost=lost)


def test_our_gpus_keeps_ours_and_drops_theirs() -> None:
    ours = OurGpus((A,))
    kept = ours.keep(Snapshot("s", (reading(A, "0000:18:00"), reading(B, "0000:2a:00"))))
    assert [r.gpu.uuid for r in kept.readings] == [A]
    assert kept.failures == ()
    assert OurGpus(None).keep(Snapshot("s", (reading(B, "x"),))).readings[0].gpu.uuid == B


def test_a_lost_gpu_known_only_by_bus_id_is_ours_if_its_bus_was() -> None:
    ours = OurGpus((A,))
    ours.keep(Snapshot("s", (reading(A, "0000:18:00"), reading(B, "0000:2a:00"))))
    lost_ours = ours.keep(Snapshot("s", (reading(None, "0000:18:00", lost=True),)))
    assert [r.gpu.bus_id for r in lost_ours.readings] == ["0000:18:00"]
    lost_theirs = ours.keep(
        Snapshot("s", (reading(A, "0000:18:00"), reading(None, "0000:2a:00", lost=True)))
    )
    assert [r.gpu.uuid for r in lost_theirs.readings] == [A]


def test_an_unknown_lost_gpu_is_kept_while_one_of_ours_is_missing() -> None:
    ours = OurGpus((A, B))
    kept = ours.keep(
        Snapshot("s", (reading(A, "0000:18:00"), reading(None, "0000:2a:00", lost=True)))
    )
    assert [r.gpu.bus_id for r in kept.readings] == ["0000:18:00", "0000:2a:00"]
    assert kept.failures == ()


def test_a_gpu_of_ours_the_tool_does_not_list_is_reported() -> None:
    kept = OurGpus((A, B)).keep(Snapshot("s", (reading(A, "0000:18:00"),)))
    (failure,) = kept.failures
    assert failure.problem is ToolProblem.NOT_LISTED
    assert failure.detail == f"{B}: not among the GPUs s sees"


def test_which_bus_ids_are_ours_once_every_one_of_ours_was_seen() -> None:
    ours = OurGpus((A,))
    assert ours.owns("0000:18:00") is None  # no poll yet
    ours.keep(Snapshot("s", (reading(A, "0000:18:00"), reading(B, "0000:2a:00"))))
    assert ours.owns("00000000:18:00.0") is True  # nvidia-smi's spelling of the same GPU
    assert ours.owns("0000:2a:00") is False
    assert ours.owns("0000:9b:00") is False  # a GPU this container cannot even see
    ours.keep(Snapshot("s", (reading(None, "0000:18:00", lost=True),)))
    assert ours.owns("0000:18:00") is True  # lost since, still ours


def test_while_one_of_ours_was_never_seen_no_bus_id_is_called_theirs() -> None:
    ours = OurGpus((A, B))
    ours.keep(Snapshot("s", (reading(A, "0000:18:00"),)))
    assert ours.owns("0000:18:00") is True
    assert ours.owns("0000:9b:00") is None


def test_a_gpu_listed_without_a_bus_id_leaves_unknown_bus_ids_undecided() -> None:
    ours = OurGpus(None)
    ours.keep(Snapshot("s", (reading(A, "0000:18:00"),)))
    assert (ours.owns("0000:18:00"), ours.owns("0000:9b:00")) == (True, False)
    lost_by_index = GpuReading(GpuId(index=1), lost=True)
    ours.keep(Snapshot("s", (reading(A, "0000:18:00"), lost_by_index)))
    assert ours.owns("0000:9b:00") is None
    ours.keep(Snapshot("s", ()))  # a failed poll lists nothing
    assert ours.owns("0000:9b:00") is None
    assert ours.owns("0000:18:00") is True


def test_an_xid_event_asks_about_its_gpu_without_teaching_what_the_polls_know() -> None:
    ours = OurGpus((A,))
    lost_by_index = GpuReading(GpuId(index=1), lost=True)
    ours.keep(Snapshot("s", (reading(A, "0000:18:00"), lost_by_index)))
    assert ours.owns("0000:9b:00") is None  # the lost GPU could be at that bus
    assert ours.admits(GpuReading(GpuId(uuid=A, bus_id="0000:18:00"), xid=79)) is True
    assert ours.admits(GpuReading(GpuId(uuid=B, bus_id="0000:2a:00"), xid=79)) is False
    assert ours.owns("0000:9b:00") is None  # one event of ours says nothing of the others


def test_keep_gpus_by_uuid_or_bus_id_in_any_spelling() -> None:
    snapshot = parse_query_csv(CSV_HEALTHY)
    kept = keep_gpus(snapshot, [UUID1.upper()], [])
    assert [r.gpu.uuid for r in kept.readings] == [UUID1]
    by_bus = keep_gpus(snapshot, [], ["0000:3b:00.0"])
    assert [r.gpu.uuid for r in by_bus.readings] == [UUID0]
    assert keep_gpus(snapshot, [], []).readings == ()


def test_whose_matches_by_uuid_or_by_the_pods_exporter_labels() -> None:
    gpus, failures = read_exporter(EXPORTER)
    assert failures == ()
    assert [g.pods for g in gpus] == [
        frozenset({("ml", "trainer-0")}),
        frozenset({("other", "trainer-0")}),
    ]

    def mine(whose: Whose) -> list[str | None]:
        return [g.reading.gpu.uuid for g in gpus if whose.matches(g.reading.gpu, g.pods)]

    assert mine(Whose()) == [] and not Whose().known()
    assert mine(Whose(pod=("ml", "trainer-0"))) == [UUID0]
    assert mine(Whose(pod=(None, "trainer-0"))) == [UUID0, UUID1]
    assert mine(Whose(pod=("ml", "trainer-1"))) == []
    assert mine(Whose(uuids=(UUID1.upper(),))) == [UUID1]
    assert Whose((A,), ("ml", "trainer-0")).describe() == f"{A}, ml/trainer-0"


def test_the_real_exporter_capture_is_told_apart_by_its_pod_labels() -> None:
    gpus, _ = read_exporter((FIXTURES / "dcgm-exporter-metrics-k8s-rtx4000ada.prom").read_text())
    (gpu,) = gpus
    assert gpu.reading.gpu.uuid == "GPU-a8394b51-c086-568a-9f1a-c1e1c934c44c"
    assert Whose(pod=("default", "cuda-75454ffb9f-8ljq7")).matches(gpu.reading.gpu, gpu.pods)
    assert not Whose(pod=("kube-system", "cuda-75454ffb9f-8ljq7")).matches(
        gpu.reading.gpu, gpu.pods
    )
    assert not Whose(pod=(None, "someone-else")).matches(gpu.reading.gpu, gpu.pods)
    assert Whose(uuids=(gpu.reading.gpu.uuid,)).matches(gpu.reading.gpu)
