"""What the fake API checks in a JobSet (jobset.x-k8s.io/v1alpha2), which kubernetes-validate
has no schema for: a minimal schema of our own, written from JobSet's API types, for the
fields that in-place restart involves. It is strict where it speaks (an unknown field in
`failurePolicy` or `status` is refused, as the CRD's structural schema prunes or refuses it)
and lets through what it does not describe (`spec.network`, `successPolicy`...). Each Job
template is checked as a batch/v1 Job against the Kubernetes schemas, as the CRD embeds it.
"""

from typing import Any

import jsonschema
import kubernetes_validate

from tests.kube.api_answers import VERSION

API_VERSION = "jobset.x-k8s.io/v1alpha2"
STRATEGIES = ["Recreate", "BlockingRecreate", "InPlaceRestart"]
ACTIONS = [
    "FailJobSet",
    "RestartJobSet",
    "RestartJobSetAndIgnoreMaxRestarts",
    "RestartJob",
    "RestartJobAndIgnoreMaxRestarts",
]
INT32 = {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}
COUNT = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
STRINGS = {"type": "array", "items": {"type": "string"}}


def _closed(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


RULE = _closed(
    {
        "name": {"type": "string", "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"},
        "action": {"enum": ACTIONS},
        "onJobFailureReasons": STRINGS,
        "onJobFailureMessagePatterns": STRINGS,
        "targetReplicatedJobs": STRINGS,
    },
    ("name", "action"),
)
FAILURE_POLICY = _closed(
    {
        "maxRestarts": INT32,
        "restartStrategy": {"enum": STRATEGIES},
        "rules": {"type": "array", "items": RULE},
    }
)
REPLICATED_JOB = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "replicas": COUNT,
        "template": {"type": "object", "properties": {"spec": {"type": "object"}}},
    },
    "required": ["name", "template"],
}
CONDITION = _closed(
    {
        "type": {"type": "string", "minLength": 1},
        "status": {"enum": ["True", "False", "Unknown"]},
        "reason": {"type": "string", "pattern": "^([A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?)?$"},
        "message": {"type": "string"},
        "lastTransitionTime": {"type": "string", "format": "date-time"},
        "observedGeneration": {"type": "integer", "minimum": 0},
    },
    ("type", "status", "reason", "message", "lastTransitionTime"),
)
REPLICATED_JOB_STATUS = _closed(
    {name: COUNT for name in ("ready", "succeeded", "failed", "active", "suspended")}
    | {
        "name": {"type": "string"},
        "jobRestarts": {"type": "array", "items": COUNT},
        "jobRestartsCountTowardsMax": {"type": "array", "items": COUNT},
    },
    ("name", "ready", "succeeded", "failed", "active", "suspended"),
)
STATUS = _closed(
    {
        "conditions": {"type": "array", "items": CONDITION},
        "restarts": COUNT,
        "restartsCountTowardsMax": COUNT,
        "terminalState": {"enum": ["", "Completed", "Failed"]},
        "replicatedJobsStatus": {"type": "array", "items": REPLICATED_JOB_STATUS},
        "previousInPlaceRestartAttempt": COUNT,
        "currentInPlaceRestartAttempt": COUNT,
    }
)
SCHEMA = {
    "type": "object",
    "properties": {
        "apiVersion": {"const": API_VERSION},
        "kind": {"const": "JobSet"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "properties": {
                "failurePolicy": FAILURE_POLICY,
                "replicatedJobs": {"type": "array", "items": REPLICATED_JOB, "minItems": 1},
                "suspend": {"type": "boolean"},
            },
            "required": ["replicatedJobs"],
        },
        "status": STATUS,
    },
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
}
_VALIDATOR = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)


def problems(obj: Any) -> list[str]:
    """What the fake refuses in a JobSet: our schema, then each Job template."""
    if not isinstance(obj, dict):
        return ["JobSet: the body is not a JSON object"]
    found = [
        f"JobSet {'.'.join(str(p) for p in error.absolute_path)}: {error.message}"
        for error in _VALIDATOR.iter_errors(obj)
    ]
    if found:
        return found
    for job in obj["spec"]["replicatedJobs"]:
        wrapped = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": job["name"]}}
        wrapped["spec"] = job["template"].get("spec", {})
        try:
            kubernetes_validate.validate(wrapped, VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(part) for part in exc.path)
            found.append(f"JobSet replicatedJobs[{job['name']}].template {where}: {exc.message}")
    return found
