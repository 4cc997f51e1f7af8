"""The gang settings (issue 14): one fault restarts every Pod of a distributed job.

`GangSettings` is a group of `WatcherSettings` (its fields are `WATCHER_GANG*`);
`gang_problems` is what load-time checking adds once the environment is known: a gang
needs the Kubernetes API, and a completion index."""

from collections.abc import Mapping
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from watcher.config.values import dns_subdomain

GangMode = Literal["off", "jobset", "lease"]
INDEX_ENV = "JOB_COMPLETION_INDEX"
"""What the Job controller sets in every Pod of an Indexed Job."""
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
STARTUP_PROBE_LIMIT = 600.0
"""Seconds of JobSet's example startup probe (failureThreshold 600 x periodSeconds 1)."""


class GangSettings(BaseModel):
    """The `WATCHER_GANG*` settings, mixed into `WatcherSettings`."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    gang: GangMode = "off"
    """Gang restart: `off`, `jobset` (the JobSet's in-place restart agent) or `lease`
    (standalone: a restart generation on a Lease)."""
    gang_name: Annotated[str | None, AfterValidator(dns_subdomain)] = None
    """The JobSet's name (jobset), or the Lease's (lease); required with a gang."""
    gang_size: int | None = Field(default=None, ge=1, le=100_000)
    """How many Pods the gang has (lease mode; the Job's `completions`)."""
    gang_index: int | None = Field(default=None, ge=0, le=1_000_000)
    """This Pod's completion index; default: JOB_COMPLETION_INDEX. Index 0 aggregates
    the arrivals in lease mode."""
    gang_selector: str | None = Field(default=None, min_length=1, max_length=1024)
    """Label selector of the gang's Pods (lease mode, index 0); default
    `batch.kubernetes.io/job-name=<WATCHER_GANG_NAME>`."""
    gang_barrier_timeout: float = Field(default=300.0, ge=1, le=86400)
    """Seconds the barrier (/readyz 503) may stay up before the Pod fails; keep it below
    the startupProbe's failureThreshold x periodSeconds."""

    @model_validator(mode="after")
    def _gang_combinations(self) -> Self:
        if self.gang == "off":
            return self
        if self.gang_name is None:
            what = "JobSet" if self.gang == "jobset" else "Lease"
            raise ValueError(f"WATCHER_GANG={self.gang} needs WATCHER_GANG_NAME (the {what})")
        if self.gang == "lease" and self.gang_size is None:
            raise ValueError(
                "WATCHER_GANG=lease needs WATCHER_GANG_SIZE (the number of Pods in the gang)"
            )
        if self.gang == "jobset" and self.gang_size is not None:
            raise ValueError(
                "WATCHER_GANG_SIZE is for WATCHER_GANG=lease: a JobSet knows its own size"
            )
        return self

    def selector(self) -> str:
        return self.gang_selector or f"{JOB_NAME_LABEL}={self.gang_name}"


def gang_problems(
    settings: GangSettings, kubernetes: str, pod_name: str | None, environ: Mapping[str, str]
) -> list[str]:
    """What a gang lacks in this environment, one line each."""
    if settings.gang == "off":
        return []
    problems = []
    if kubernetes == "off" or pod_name is None:
        problems.append(
            f"WATCHER_GANG={settings.gang} needs the Kubernetes API: WATCHER_KUBERNETES=auto "
            "and WATCHER_POD_NAME (downward API metadata.name)"
        )
    if settings.gang == "lease" and gang_index(settings, environ) is None:
        problems.append(
            f"WATCHER_GANG=lease needs WATCHER_GANG_INDEX or {INDEX_ENV} (an Indexed Job sets it)"
        )
    return problems


def gang_index(settings: GangSettings, environ: Mapping[str, str]) -> int | None:
    """This Pod's index: the setting, else the Job controller's variable, else None."""
    if settings.gang_index is not None:
        return settings.gang_index
    raw = environ.get(INDEX_ENV, "").strip()
    return int(raw) if raw.isdigit() else None
