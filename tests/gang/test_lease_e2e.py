"""End to end, standalone (lease) mode: N watcher processes, one Lease holding the gang's
restart generation, the watcher of index 0 aggregating the arrivals."""

import pytest

from tests.e2e.workload import NCCL_TIMEOUT, append
from tests.gang.cluster import LEASE, Gang, port_of
from tests.gang.conftest import MakeGang
from watcher.gang.arrivals import BARRIER
from watcher.kube.generation import GENERATION

N = 4


def lease_annotations(gang: Gang) -> dict[str, str]:
    found = gang.api.api.get("leases", LEASE)
    assert found is not None
    annotations: dict[str, str] = found["metadata"].get("annotations", {})
    return annotations


@pytest.mark.slow
@pytest.mark.parametrize("faulty", [(2,), (1, 3)], ids=["one-fault", "two-faults"])
def test_faults_bump_the_generation_once_and_the_gang_comes_back(
    make_gang: MakeGang, faulty: tuple[int, ...]
) -> None:
    gang = make_gang(N, "lease")
    gang.start_all()
    gang.wait_all_ready(60)
    assert lease_annotations(gang)[BARRIER] == "0"  # created by the aggregator
    for index in faulty:
        append(gang.members[index].paths.log, NCCL_TIMEOUT + "\n")
    assert gang.wait_all_exit(30) == [88] * N
    assert lease_annotations(gang)[GENERATION] == "1"  # two faults: still one step
    for member in gang.members:
        (entry,) = gang.restarts(member)
        assert entry["details"]["gang_generation"] == 1  # type: ignore[index]
    for member in gang.members:
        gang.restart(member)
    gang.wait_all_ready(60)
    assert lease_annotations(gang)[BARRIER] == "1"
    for member in gang.members:
        assert gang.proc(member).status()["monitors"]["gang"]["generation"] == 1


@pytest.mark.slow
def test_the_barrier_holds_until_every_pod_arrived_then_fails_at_its_deadline(
    make_gang: MakeGang,
) -> None:
    gang = make_gang(N, "lease", WATCHER_GANG_BARRIER_TIMEOUT="4")
    for member in gang.members[:-1]:
        port_of(gang.start(member))
    first = gang.proc(gang.members[0])
    status = first.wait_status(lambda s: s["state"] == "failing", "failing", 30)
    assert "GangBarrierDeadline" in status["stopped_acting"]
    assert first.get("/readyz")[0] == 503
    assert BARRIER not in (lease_annotations(gang) if gang.api.api.get("leases", LEASE) else {})
    late = gang.start(gang.members[-1])  # the last Pod arrives after the deadline
    late.wait_ready(60)  # its barrier lifts (the aggregator wrote it) ...
    assert lease_annotations(gang)[BARRIER] == "0"
    assert first.get("/readyz")[0] == 503  # ... but a Pod that failed stays failed
    assert first.status()["state"] == "failing"
