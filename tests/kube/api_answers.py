"""What a real Kubernetes API server answers, for the fake in `fake_api.py`: the checks it
makes on a body, its Status bodies for refusals and errors, and a kubeconfig to reach it."""

import copy
import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from aiohttp import web

from tests.kube.manifests import timestamp

Obj = dict[str, Any]
VERSION = "1.35.0"
"""The Kubernetes version whose schemas every body is checked against."""
VERSION_INFO = {
    "major": "1",
    "minor": "35",
    "gitVersion": "v1.35.0",
    "gitCommit": "0" * 40,
    "gitTreeState": "clean",
    "buildDate": "2025-12-17T00:00:00Z",
    "goVersion": "go1.25.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}
API_VERSIONS = {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}


@dataclass(frozen=True)
class Call:
    """One request, as answered."""

    method: str
    path: str
    route: str | None
    """One of ROUTES; None for `/version`, `/api` and paths the fake does not serve."""
    status: int
    body: Any
    at: float
    """`time.monotonic()` when it arrived."""
    client: str = ""
    """Who made it: "" for an HTTP client, else the in-process fake (``jobset-controller``)."""


class Mode(StrEnum):
    """How the fake answers a route."""

    NORMAL = "normal"
    FORBIDDEN = "403"
    """As RBAC refuses a verb the Role lacks."""
    TOO_MANY = "429"
    """As an eviction blocked by a PodDisruptionBudget (other routes: throttling)."""
    ERROR = "500"
    STALL = "stall"
    """Never answer, until the fake stops."""


def status_body(code: int, reason: str, message: str, details: Obj | None = None) -> Obj:
    """A metav1.Status, as the API server answers every error."""
    body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
    body |= {"message": message, "reason": reason, "code": code}
    return body | ({"details": details} if details else {})


def not_found(resource: str, name: str) -> tuple[int, Obj]:
    return 404, status_body(404, "NotFound", f'{resource} "{name}" not found')


NOT_SERVED = 404, status_body(404, "NotFound", "the server could not find the requested resource")


def conflict(resource: str, name: str) -> tuple[int, Obj]:
    return 409, status_body(409, "AlreadyExists", f'{resource} "{name}" already exists')


SUCCESS = (
    201,
    {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201},
)
"""What the API server answers a granted eviction."""


def created_event(ns: str, body: Obj, version: str) -> Obj:
    """``body`` as the API server stores it: named (generateName), with uid and timestamps."""
    event = {"apiVersion": "v1", "kind": "Event", **body}
    meta = event["metadata"] = dict(event["metadata"])
    meta["name"] = meta.get("name") or meta["generateName"] + uuid.uuid4().hex[:5]
    meta |= {"namespace": ns, "uid": str(uuid.uuid4()), "resourceVersion": version}
    meta["creationTimestamp"] = timestamp()
    return event


def evicted(pod: Obj) -> Obj:
    """``pod`` once its eviction is granted: terminating, with the DisruptionTarget condition."""
    pod = copy.deepcopy(pod)
    pod["metadata"]["deletionTimestamp"] = timestamp()
    condition = {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}
    pod["status"]["conditions"].append(condition | {"lastTransitionTime": timestamp()})
    return pod


def refusal(
    mode: Mode, method: str, path: str, ns: str, name: str, *, route: str | None = None
) -> tuple[int, Obj]:
    """The answer of a route in ``mode`` (not NORMAL or STALL)."""
    resource, group, verb = _rbac(method, path, route)
    if mode is Mode.FORBIDDEN:
        user = f"system:serviceaccount:{ns}:pod-watcher"
        qualified = f"{resource}.{group}" if group else resource
        message = (
            f'{qualified} "{name}" is forbidden: User "{user}" cannot {verb} resource '
            f'"{resource}" in API group "{group}" in the namespace "{ns}"'
        )
        return 403, status_body(403, "Forbidden", message, {"name": name, "kind": resource})
    if mode is Mode.TOO_MANY and resource == "pods/eviction":
        message = "Cannot evict pod as it would violate the pod's disruption budget."
        budget = "The disruption budget trainer needs 1 healthy pods and has 1 currently"
        cause = {"reason": "DisruptionBudget", "message": budget}
        return 429, status_body(429, "TooManyRequests", message, {"causes": [cause]})
    if mode is Mode.TOO_MANY:
        message = "Too many requests, please try again later."
        return 429, status_body(429, "TooManyRequests", message, {"retryAfterSeconds": 1})
    return 500, status_body(500, "InternalError", "Internal error occurred: the fake was told to")


def _rbac(method: str, path: str, route: str | None) -> tuple[str, str, str]:
    """(resource, API group, verb) of a request, as RBAC names them."""
    if route and "." in route:
        resource, verb = route.rsplit(".", 1)
        parts = path.split("/")
        return resource, parts[2] if parts[1] == "apis" else "", verb
    resource = "pods/eviction" if path.endswith("/eviction") else path.split("/")[5]
    verb = {"GET": "get", "POST": "create", "PATCH": "patch", "PUT": "update"}[method]
    return resource, "", verb


def problems(body: Any, api: str, kind: str, ns: str, name: str | None = None) -> list[str]:
    """What a real API server would refuse in ``body`` posted to a namespaced ``kind``
    endpoint: the strict schema, another kind, a missing name, another name or namespace."""
    if not isinstance(body, dict):
        return [f"{kind}: the body is not a JSON object"]
    obj = {"apiVersion": api, "kind": kind, **body}
    if (obj["apiVersion"], obj["kind"]) != (api, kind):
        return [f"{kind}: posted as {obj['apiVersion']} {obj['kind']}"]
    found = []
    try:
        kubernetes_validate.validate(obj, VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(part) for part in exc.path)
        found.append(f"{kind} {where}: {exc.message}")
    meta = obj.get("metadata") or {}
    if not (meta.get("name") or meta.get("generateName")):
        found.append(f"{kind} metadata.name: name or generateName is required")
    if name is not None and meta.get("name") not in (None, name):
        found.append(f"{kind}: name in URL does not match name in the object")
    involved = (obj.get("involvedObject") or {}).get("namespace") or ns
    if meta.get("namespace", ns) != ns or involved != ns:
        found.append(f"{kind}: namespace does not match the request's {ns!r}")
    return found


async def read_json(request: web.Request) -> Any:
    """The request's JSON body; None if it is not JSON."""
    try:
        return await request.json()
    except ValueError:
        return None


def merge(target: Obj, patch: Obj) -> Obj:
    """RFC 7386 merge patch (what a strategic merge patch does to an Event's fields)."""
    merged = dict(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def write_kubeconfig(path: Path, url: str, token: str, namespace: str = "default") -> Path:
    """A kubeconfig for a plain-http server and a bearer token.

    kubernetes_asyncio's `load_kube_config` takes an `http://` server as it is: it reads
    certificate settings only for `https`, and sends `Authorization: Bearer <token>`."""
    context = {"cluster": "fake", "user": "fake", "namespace": namespace}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": url}}],
        "users": [{"name": "fake", "user": {"token": token}}],
        "contexts": [{"name": "fake", "context": context}],
    }
    path.write_text(yaml.safe_dump(config), "utf-8")
    return path
