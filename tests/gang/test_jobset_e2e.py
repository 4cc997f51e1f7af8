"""End to end, JobSet mode: N watcher processes, each the in-place restart agent of its own
fake Pod, with the fake JobSet controller moving the JobSet's attempts."""

from pathlib import Path

import pytest

from tests.e2e.process import run_command
from tests.e2e.workload import NCCL_TIMEOUT, append
from tests.gang.cluster import Gang, port_of, wait_for
from tests.gang.conftest import MakeGang
from tests.kube.api_answers import Mode

N = 4


def restart_everyone(gang: Gang) -> None:
    for member in gang.members:
        gang.restart(member)
    gang.wait_all_ready(60)


def assert_one_unit_each(gang: Gang, generation: int) -> None:
    for member in gang.members:
        (entry,) = gang.restarts(member)
        details = entry["details"]
        assert isinstance(details, dict)
        assert details["gang_generation"] == generation, details
        assert details["gang"] == "jobset/default/js"


@pytest.mark.slow
def test_a_fault_in_one_pod_restarts_the_gang_and_the_barrier_lifts(make_gang: MakeGang) -> None:
    gang = make_gang(N)
    gang.start_all()
    gang.wait_all_ready(60)
    assert gang.jobset_status()["currentInPlaceRestartAttempt"] == 0
    faulty = gang.members[1]
    append(faulty.paths.log, NCCL_TIMEOUT + "\n")
    assert gang.wait_all_exit(30) == [88] * N
    assert gang.jobset_status()["previousInPlaceRestartAttempt"] == 0
    assert_one_unit_each(gang, 1)
    follower = gang.restarts(gang.members[0])[0]
    assert "the gang is restarting" in str(follower["explanation"])
    assert len(gang.api.api.events) == 1  # one Event per gang restart, by the Pod that decided

    restart_everyone(gang)
    assert gang.jobset_status()["currentInPlaceRestartAttempt"] == 1
    for member in gang.members:
        status = gang.proc(member).status()
        assert status["monitors"]["gang"]["barrier"] == "down"
        assert gang.proc(member).get("/readyz")[0] == 200
    assert_one_unit_each(gang, 1)  # the new starts counted nothing more


@pytest.mark.slow
def test_two_faults_at_once_are_one_gang_restart_and_one_unit_of_budget(
    make_gang: MakeGang,
) -> None:
    gang = make_gang(N)
    gang.start_all()
    gang.wait_all_ready(60)
    for member in (gang.members[0], gang.members[2]):
        append(member.paths.log, NCCL_TIMEOUT + "\n")
    assert gang.wait_all_exit(30) == [88] * N
    assert gang.jobset_status()["previousInPlaceRestartAttempt"] == 0
    assert_one_unit_each(gang, 1)
    restart_everyone(gang)
    assert gang.jobset_status()["currentInPlaceRestartAttempt"] == 1


@pytest.mark.slow
def test_a_pod_that_never_comes_back_fails_the_others_at_the_barrier_deadline(
    make_gang: MakeGang,
) -> None:
    gang = make_gang(N)
    gang.start_all()
    gang.wait_all_ready(60)
    append(gang.members[0].paths.log, NCCL_TIMEOUT + "\n")
    assert gang.wait_all_exit(30) == [88] * N
    back = gang.members[:-1]  # pod 3, a follower, never comes back (the faulty pod 0's
    # early write is its arrival: docs/gang.md, "the early write")
    for member in back:
        port_of(gang.restart(member, WATCHER_GANG_BARRIER_TIMEOUT="4"))
    for member in back:
        assert gang.proc(member).get("/readyz")[0] == 503  # the trainer is held
    for member in back:
        status = gang.proc(member).wait_status(lambda s: s["state"] == "failing", "failing", 30)
        assert "GangBarrierDeadline" in status["stopped_acting"]
        assert gang.proc(member).get("/readyz")[0] == 503
        assert member.paths.ledger_entries("fail")
    assert "currentInPlaceRestartAttempt" in gang.jobset_status()
    assert gang.jobset_status()["currentInPlaceRestartAttempt"] == 0


@pytest.mark.slow
def test_a_dropped_watch_and_a_410_in_the_middle_still_complete(make_gang: MakeGang) -> None:
    gang = make_gang(N)
    gang.start_all()
    gang.wait_all_ready(60)
    gang.api.api.compact()  # every watch resumed from before now gets 410 Gone, then relists
    assert gang.api.api.drop_watches("jobsets") == N
    append(gang.members[0].paths.log, NCCL_TIMEOUT + "\n")
    assert gang.wait_all_exit(30) == [88] * N
    gang.api.api.drop_watches("jobsets")
    restart_everyone(gang)
    assert gang.jobset_status()["currentInPlaceRestartAttempt"] == 1


@pytest.mark.slow
def test_a_stalled_api_during_a_gang_restart_ends_in_defined_states(make_gang: MakeGang) -> None:
    """The failing Pod exits within its last words' deadline whatever the API does; its
    peers keep running and report the coordination lost; once the API answers again the
    restarted Pod's arrival restarts them, and the gang's barrier lifts."""
    gang = make_gang(N)
    gang.start_all()
    gang.wait_all_ready(60)
    api = gang.api.api
    for route in ("pods.patch", "jobsets.list", "jobsets.watch"):
        api.set_mode(route, Mode.STALL)
    api.drop_watches("jobsets")
    faulty, peers = gang.members[1], [m for m in gang.members if m.index != 1]
    append(faulty.paths.log, NCCL_TIMEOUT + "\n")
    assert gang.proc(faulty).wait_exit(10) == 88  # last words: 5 s at most
    for member in peers:  # lost within lost_after + api_timeout + backoff_max = 16 s
        gang.proc(member).wait_status(
            lambda s: s["monitors"]["gang"]["lost"] is not None, "coordination lost", 30
        )
        assert gang.proc(member).alive()
    for route in ("pods.patch", "jobsets.list", "jobsets.watch"):
        api.set_mode(route, Mode.NORMAL)
    gang.restart(faulty)
    for member in peers:
        assert gang.proc(member).wait_exit(30) == 88
    for member in peers:
        gang.restart(member)
    gang.wait_all_ready(60)
    wait_for(lambda: gang.jobset_status().get("currentInPlaceRestartAttempt") == 1, 10,
             "attempt 1 everywhere", gang)  # fmt: skip


def test_a_gang_without_api_access_is_a_configuration_error(tmp_path: Path) -> None:
    env = {
        "WATCHER_LOG_PATHS": str(tmp_path / "*.log"),
        "WATCHER_STATE_DIR": str(tmp_path / "state"),
        "WATCHER_TERMINATION_LOG": "",
        "WATCHER_HTTP_PORT": "0",
        "WATCHER_GPU": "off",
        "WATCHER_GANG": "jobset",
        "WATCHER_GANG_NAME": "js",
        "WATCHER_POD_NAME": "js-rj-0-0",  # but no KUBECONFIG, no service account
        "KUBECONFIG": "",
    }
    result = run_command(["run"], env, tmp_path)
    assert result.returncode == 2, result.stderr
    assert "WATCHER_GANG=jobset needs the Kubernetes API" in result.stderr
