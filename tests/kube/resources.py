"""The kinds of object the fake API keeps, and what a real API server does with each request
to them: selectors, list bodies, updates under optimistic concurrency, patches, checks.

Route names are ``<plural>.<verb>`` with the RBAC verbs (``leases.update``,
``jobsets/status.update``, ``configmaps.watch``); reading the Pod keeps its old name ``pod``.
"""

import copy
from dataclasses import dataclass
from typing import Any

from tests.kube import api_answers as k8s
from tests.kube import jobset_schema
from tests.kube.store import Obj, Selector

Answer = tuple[int, Obj]
VERBS = ("get", "list", "watch", "create", "update", "patch")
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
POD_PATCHABLE = ("labels", "annotations", "resourceVersion")
"""What of a Pod the fake lets a patch change: metadata.labels and .annotations (and a
resourceVersion precondition)."""


@dataclass(frozen=True)
class Resource:
    plural: str
    api_version: str
    kind: str
    status: bool = False
    """Has a status subresource: a PUT of the object keeps its status, a PUT of /status
    keeps everything else."""

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def prefix(self) -> str:
        return f"/apis/{self.api_version}" if self.group else f"/api/{self.api_version}"

    @property
    def builtin(self) -> bool:
        return self.plural != "jobsets"

    def route(self, verb: str, status: bool = False) -> str:
        name = f"{self.plural}{'/status' if status else ''}.{verb}"
        return "pod" if name == "pods.get" else name

    def qualified(self) -> str:
        """As in API messages: ``leases.coordination.k8s.io``, ``pods``."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCES = {
    r.plural: r
    for r in (
        Resource("pods", "v1", "Pod"),
        Resource("configmaps", "v1", "ConfigMap"),
        Resource("leases", "coordination.k8s.io/v1", "Lease"),
        Resource("jobsets", jobset_schema.API_VERSION, "JobSet", status=True),
    )
}
OBJECT_ROUTES = tuple(
    [r.route(verb) for r in RESOURCES.values() for verb in VERBS]
    + [RESOURCES["jobsets"].route(verb, status=True) for verb in ("get", "update", "patch")]
)


def resource_of(obj: Obj) -> Resource:
    for resource in RESOURCES.values():
        if (obj.get("apiVersion"), obj.get("kind")) == (resource.api_version, resource.kind):
            return resource
    raise ValueError(f"the fake keeps no {obj.get('apiVersion')} {obj.get('kind')}")


# -- selectors ------------------------------------------------------------------------------


def selector(fields: str, labels: str) -> Selector | str:
    """A filter from ``fieldSelector`` and ``labelSelector`` (equality terms, ``k``, ``!k``),
    or the message of the 400 a real API server answers."""
    tests: list[Selector] = []
    for term in filter(None, fields.split(",")):
        key, negate, value = _term(term)
        if key not in ("metadata.name", "metadata.namespace"):
            return f'field label not supported: "{key}"'
        tests.append(_field_test(key.split(".")[1], value, negate))
    for term in filter(None, labels.split(",")):
        key, negate, value = _term(term)
        tests.append(_label_test(key, value, negate))
    return lambda obj: all(test(obj) for test in tests)


def _field_test(field: str, value: str | None, negate: bool) -> Selector:
    def test(obj: Obj) -> bool:
        return bool(obj["metadata"].get(field) == value) != negate

    return test


def _label_test(key: str, value: str | None, negate: bool) -> Selector:
    def test(obj: Obj) -> bool:
        labels = obj["metadata"].get("labels") or {}
        if value is None:  # "k" or "!k"
            return (key.lstrip("!") in labels) != key.startswith("!")
        return (labels.get(key) == value) != negate

    return test


def _term(term: str) -> tuple[str, bool, str | None]:
    for op, negate in (("!=", True), ("==", False), ("=", False)):
        if op in term:
            key, value = term.split(op, 1)
            return key.strip(), negate, value.strip()
    return term.strip(), False, None


def list_body(resource: Resource, items: list[Obj], resource_version: int) -> Obj:
    return {
        "kind": f"{resource.kind}List",
        "apiVersion": resource.api_version,
        "metadata": {"resourceVersion": str(resource_version)},
        "items": items,
    }


# -- checks ---------------------------------------------------------------------------------


def problems(resource: Resource, obj: Any, ns: str, name: str | None = None) -> list[str]:
    """What a real API server refuses in ``obj`` sent for ``resource`` in ``ns``."""
    if resource.builtin:
        return k8s.problems(obj, resource.api_version, resource.kind, ns, name)
    found = jobset_schema.problems(obj)
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if isinstance(meta, dict):
        if not meta.get("name"):
            found.append("JobSet metadata.name: name is required")
        elif name is not None and meta["name"] != name:
            found.append("JobSet: name in URL does not match name in the object")
        if meta.get("namespace", ns) != ns:
            found.append(f"JobSet: namespace does not match the request's {ns!r}")
    return found


def conflict(resource: Resource, name: str) -> Answer:
    message = (
        f'Operation cannot be fulfilled on {resource.qualified()} "{name}": the object has '
        "been modified; please apply your changes to the latest version and try again"
    )
    details = {"name": name, "kind": resource.plural}
    if resource.group:
        details["group"] = resource.group
    return 409, k8s.status_body(409, "Conflict", message, details)


def already_exists(resource: Resource, name: str) -> Answer:
    message = f'{resource.qualified()} "{name}" already exists'
    return 409, k8s.status_body(409, "AlreadyExists", message)


def not_found(resource: Resource, name: str) -> Answer:
    return 404, k8s.status_body(404, "NotFound", f'{resource.qualified()} "{name}" not found')


def stale(current: Obj, sent: Obj) -> bool:
    """Whether ``sent`` carries a resourceVersion precondition that ``current`` fails."""
    wanted = (sent.get("metadata") or {}).get("resourceVersion")
    return wanted not in (None, "", current["metadata"]["resourceVersion"])


# -- what an update or a patch stores -------------------------------------------------------


def created(resource: Resource, body: Obj, ns: str) -> Obj:
    obj = {"apiVersion": resource.api_version, "kind": resource.kind, **copy.deepcopy(body)}
    meta = obj["metadata"]
    meta["namespace"] = ns
    for server_set in ("resourceVersion", "uid", "creationTimestamp"):
        meta.pop(server_set, None)
    if resource.status:
        meta["generation"] = 1
        obj.pop("status", None)
    return obj


def updated(resource: Resource, current: Obj, body: Obj, status: bool) -> Obj:
    """What a PUT of ``body`` (to the object, or to its /status) makes of ``current``."""
    if status:
        new = copy.deepcopy(current)
        new["status"] = copy.deepcopy(body.get("status", {}))
        return new
    new = {"apiVersion": resource.api_version, "kind": resource.kind, **copy.deepcopy(body)}
    meta = new["metadata"]
    for kept in ("uid", "creationTimestamp", "namespace", "generation"):
        if kept in current["metadata"]:
            meta[kept] = current["metadata"][kept]
    if resource.status:
        new["status"] = copy.deepcopy(current.get("status", {}))
        if new.get("spec") != current.get("spec"):
            meta["generation"] = meta.get("generation", 1) + 1
    return new


def patched(
    resource: Resource, current: Obj, patch: Any, content_type: str, status: bool
) -> tuple[Obj, list[str], int]:
    """``current`` after ``patch``: the result, what is wrong, and the status for that
    (422, or 415 for a media type the resource does not take)."""
    if content_type not in (MERGE, STRATEGIC) or (
        content_type == STRATEGIC and not resource.builtin
    ):
        accepted = f"{MERGE}{', ' + STRATEGIC if resource.builtin else ''}"
        return current, [f"the fake takes {accepted} patches, not {content_type!r}"], 415
    if not isinstance(patch, dict):
        return current, ["a merge patch is a JSON object"], 422
    if resource.plural == "pods" and not _pod_metadata_only(patch):
        return current, ["the fake patches only metadata.labels and annotations of a Pod"], 422
    merged = k8s.merge(current, patch)
    if status:
        merged = {**current, "status": merged.get("status", {})}
    elif resource.status:
        merged["status"] = current.get("status", {})
    merged["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    return merged, [], 422


def _pod_metadata_only(patch: Obj) -> bool:
    meta = patch.get("metadata")
    return set(patch) <= {"metadata"} and isinstance(meta, dict) and set(meta) <= set(POD_PATCHABLE)
