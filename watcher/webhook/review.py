"""One AdmissionReview (admission.k8s.io/v1) in, its response out: inject on a Pod.

Always allowed: a Pod inject cannot wire is admitted unchanged, with the reason as an
admission warning (kubectl prints it), as it is with the webhook down (failurePolicy
Ignore). Selection happens in the MutatingWebhookConfiguration (labels); a Pod can still
opt out with the annotation `pod-watcher.io/inject: disabled` and name its trainer with
`pod-watcher.io/container`.
"""

import base64
import json
from dataclasses import replace
from typing import Any

from watcher.inject.documents import inject_documents
from watcher.inject.pieces import InjectError, Options
from watcher.webhook.patch import diff

ANNOTATION = "pod-watcher.io/inject"
CONTAINER = "pod-watcher.io/container"
OFF = ("disabled", "false", "off")
API = "admission.k8s.io/v1"


class ReviewError(Exception):
    """Not an AdmissionReview this webhook can answer (HTTP 400)."""


def answer(review: Any, options: Options) -> dict[str, Any]:
    """The AdmissionReview response to ``review``."""
    request = _request(review)
    response: dict[str, Any] = {"uid": request["uid"], "allowed": True}
    pod = request.get("object")
    if not isinstance(pod, dict) or not _is_pod_creation(request):
        return _wrap(response)
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if str(annotations.get(ANNOTATION, "")).lower() in OFF:
        return _wrap(response)
    if annotations.get(CONTAINER):
        options = replace(options, containers=(str(annotations[CONTAINER]),))
    try:
        result = inject_documents([pod], options)
    except InjectError as exc:
        response["warnings"] = [f"pod-watcher: not injected: {exc}"[:1000]]
        return _wrap(response)
    if result.notes:
        response["warnings"] = [f"pod-watcher: {note}"[:1000] for note in result.notes]
    ops = diff(pod, result.documents[0])
    if ops:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(ops).encode()).decode()
    return _wrap(response)


def _request(review: Any) -> dict[str, Any]:
    if not isinstance(review, dict) or review.get("kind") != "AdmissionReview":
        raise ReviewError("not an AdmissionReview")
    if review.get("apiVersion") != API:
        raise ReviewError(f"apiVersion {review.get('apiVersion')!r}: only {API} is served")
    request = review.get("request")
    if not isinstance(request, dict) or not isinstance(request.get("uid"), str):
        raise ReviewError("an AdmissionReview without request.uid")
    return request


def _is_pod_creation(request: dict[str, Any]) -> bool:
    resource = (request.get("resource") or {}).get("resource", "pods")
    operation = request.get("operation", "CREATE")
    return bool(resource == "pods" and operation == "CREATE" and not request.get("subResource"))


def _wrap(response: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "AdmissionReview", "response": response}
