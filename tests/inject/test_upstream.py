"""`pod-watcher inject` on the projects' own example manifests (tests/inject/upstream, each
with its source): the output validates strictly against the 1.35 and 1.36 schemas, passes
`check --pod`, is unchanged by a second run, and `--uninject` gives back the input."""

from pathlib import Path

import kubernetes_validate
import pytest

from tests.inject.shapes import (
    Obj,
    check_pod,
    inject,
    load_all,
    train_job_pods,
    upstream,
    validatable,
)
from watcher.kube.pod_checks import check_pod as check_spec

VERSIONS = ("1.35.0", "1.36.0")
EXAMPLES = {
    "k8s-pod-commands.yaml": 1,
    "k8s-job-pi.yaml": 1,
    "jobset-pytorch-resnet.yaml": 1,
    "pytorchjob-simple.yaml": 2,
    "trainer-custom-runtime.yaml": 1,
    "trainer-torch-distributed.yaml": 1,
}
"""Each example and the Pod specs in it that get a sidecar."""


@pytest.fixture(scope="module")
def injected(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("injected")
    paths = {}
    for name in EXAMPLES:
        result = inject(str(upstream(name)))
        assert result.returncode == 0, result.stderr
        paths[name] = folder / name
        paths[name].write_text(result.stdout, "utf-8")
    return paths


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", EXAMPLES)
def test_output_validates_strictly(name: str, version: str, injected: dict[str, Path]) -> None:
    documents = load_all(injected[name].read_text("utf-8"))
    checked = [obj for document in documents for _, obj in validatable(document)]
    assert len(checked) >= EXAMPLES[name]
    for obj in checked:
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("name", EXAMPLES)
def test_output_passes_check_pod(name: str, injected: dict[str, Path]) -> None:
    result = check_pod(injected[name])
    count = EXAMPLES[name]
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip() == f"{count} of {count} Pod specs are wired for in-place restarts"


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_input_fails_check_pod(name: str) -> None:
    """The check is not vacuous: before inject, no example is wired."""
    result = check_pod(upstream(name))
    assert result.returncode == 1
    assert "WatcherContainerNotFound" in result.stdout


@pytest.mark.parametrize("name", EXAMPLES)
def test_a_second_run_changes_nothing(name: str, injected: dict[str, Path]) -> None:
    first = injected[name].read_text("utf-8")
    again = inject(str(injected[name]))
    assert again.returncode == 0, again.stderr
    assert again.stdout == first


@pytest.mark.parametrize("name", EXAMPLES)
def test_uninject_gives_back_the_input(name: str, injected: dict[str, Path]) -> None:
    result = inject("--uninject", str(injected[name]))
    assert result.returncode == 0, result.stderr
    assert load_all(result.stdout) == load_all(upstream(name).read_text("utf-8"))


def test_the_train_jobs_pods_are_wired(injected: dict[str, Path]) -> None:
    """The Pod the Trainer controller builds from a TrainJob and its injected runtime: the
    runtime brings the sidecar, the TrainJob's own command runs through the launcher."""
    for name in ("trainer-custom-runtime.yaml", "trainer-torch-distributed.yaml"):
        documents = load_all(injected[name].read_text("utf-8"))
        pods = list(train_job_pods(documents))
        assert len(pods) == 1
        for where, spec in pods:
            assert check_spec(spec, "pod-watcher", 88, "/pod-watcher") == [], where
            (node,) = spec["containers"]
            assert node["command"][:3] == ["python3", "/pod-watcher/launch", "--"], where


def test_a_train_job_alone_is_told_to_inject_its_runtime() -> None:
    documents = load_all(upstream("trainer-torch-distributed.yaml").read_text("utf-8"))
    (job,) = [d for d in documents if d["kind"] == "TrainJob"]
    from watcher.inject.yamlio import dump

    result = inject(stdin=dump([job]))
    assert result.returncode == 0, result.stderr
    (out,) = load_all(result.stdout)
    assert out["spec"]["trainer"]["command"][:3] == ["python3", "/pod-watcher/launch", "--"]
    assert "its runtime ClusterTrainingRuntime/torch-distributed: inject that too" in result.stderr


def test_a_trainer_without_command_is_refused_and_nothing_is_written() -> None:
    """Only args: the image's entrypoint runs, and the launcher cannot go in front of it."""
    result = inject(str(upstream("pytorchjob-mnist-nccl.yaml")))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "pod-watcher inject: PyTorchJob/pytorch-dist-mnist-nccl at "
        "spec.pytorchReplicaSpecs.Master.template.spec: container 'pytorch' has no command: "
        "its image's entrypoint runs, which inject cannot see, so the launcher cannot go in "
        "front of it; write the entrypoint as command: (keeping args:) and inject again"
    )


def test_the_pytorch_container_is_the_trainer_in_every_replica(injected: dict[str, Path]) -> None:
    (job,) = load_all(injected["pytorchjob-simple.yaml"].read_text("utf-8"))
    for role, replica in job["spec"]["pytorchReplicaSpecs"].items():
        spec: Obj = replica["template"]["spec"]
        assert [c["name"] for c in spec["initContainers"]] == ["pod-watcher"], role
        (pytorch,) = spec["containers"]
        assert pytorch["command"] == [
            "python3", "/pod-watcher/launch", "--", "python3", "/opt/mnist/src/mnist.py",
            "--epochs=1",
        ]  # fmt: skip
        assert replica["restartPolicy"] == "OnFailure"  # the operator's field, left alone


def test_jobset_failure_policies_are_left_alone(injected: dict[str, Path]) -> None:
    """Only the per-Pod pieces: the Job template's own fields stay as they were."""
    (before,) = load_all(upstream("jobset-pytorch-resnet.yaml").read_text("utf-8"))
    (after,) = load_all(injected["jobset-pytorch-resnet.yaml"].read_text("utf-8"))
    old, new = before["spec"]["replicatedJobs"][0], after["spec"]["replicatedJobs"][0]
    strip = {"template"}
    assert {k: v for k, v in new["template"]["spec"].items() if k not in strip} == {
        k: v for k, v in old["template"]["spec"].items() if k not in strip
    }
    assert {k: v for k, v in after["spec"].items() if k != "replicatedJobs"} == {
        k: v for k, v in before["spec"].items() if k != "replicatedJobs"
    }
