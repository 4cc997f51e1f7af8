"""The WATCHER_GANG settings: defaults, the index from the Job controller, bad combinations."""

import pytest

from tests.config.test_load import env, problems
from watcher.config.gang import gang_index
from watcher.config.load import load_config

__all__ = ["env"]


def test_off_by_default(env: pytest.MonkeyPatch) -> None:
    settings = load_config().settings
    assert settings.gang == "off" and settings.gang_barrier_timeout == 300


def test_a_lease_gang_with_the_index_from_the_job_controller(env: pytest.MonkeyPatch) -> None:
    for name, value in {
        "WATCHER_GANG": "lease",
        "WATCHER_GANG_NAME": "train",
        "WATCHER_GANG_SIZE": "8",
        "WATCHER_POD_NAME": "train-0-abcde",
        "JOB_COMPLETION_INDEX": "3",
    }.items():
        env.setenv(name, value)
    settings = load_config().settings
    assert gang_index(settings, {"JOB_COMPLETION_INDEX": "3"}) == 3
    assert settings.selector() == "batch.kubernetes.io/job-name=train"
    assert gang_index(settings.model_copy(update={"gang_index": 0}), {}) == 0


@pytest.mark.parametrize(
    ("variables", "says"),
    [
        ({"WATCHER_GANG": "jobset"}, "WATCHER_GANG=jobset needs WATCHER_GANG_NAME"),
        ({"WATCHER_GANG": "lease", "WATCHER_GANG_NAME": "g"}, "needs WATCHER_GANG_SIZE"),
        (
            {"WATCHER_GANG": "jobset", "WATCHER_GANG_NAME": "js", "WATCHER_GANG_SIZE": "4"},
            "WATCHER_GANG_SIZE is for WATCHER_GANG=lease",
        ),
        ({"WATCHER_GANG": "jobset", "WATCHER_GANG_NAME": "js"}, "needs the Kubernetes API"),
        (
            {
                "WATCHER_GANG": "lease",
                "WATCHER_GANG_NAME": "g",
                "WATCHER_GANG_SIZE": "4",
                "WATCHER_POD_NAME": "p",
            },
            "needs WATCHER_GANG_INDEX or JOB_COMPLETION_INDEX",
        ),
        ({"WATCHER_GANG": "slurm"}, "WATCHER_GANG"),
        ({"WATCHER_GANG_BARRIER_TIMEOUT": "0"}, "WATCHER_GANG_BARRIER_TIMEOUT"),
    ],
)
def test_bad_combinations_are_configuration_errors(
    env: pytest.MonkeyPatch, variables: dict[str, str], says: str
) -> None:
    env.delenv("JOB_COMPLETION_INDEX", raising=False)
    assert says in problems(env, **variables)
