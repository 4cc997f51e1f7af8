"""AdmissionReview requests as the API server sends them (admission.k8s.io/v1), and the
Pod a response's patch makes."""

import base64
import json
import uuid
from typing import Any

import jsonpatch

Obj = dict[str, Any]
TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_SOURCES = [
    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
]


def trainer_pod(**labels: str) -> Obj:
    """A Job's Pod as the webhook receives it: after the ServiceAccount admission plugin
    (serviceAccountName default, its token volume in every container)."""
    token = "kube-api-access-9xq2z"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "trainer-", "namespace": "training", "labels": labels},
        "spec": {
            "restartPolicy": "Never",
            "serviceAccountName": "default",
            "containers": [
                {
                    "name": "trainer",
                    "image": "my-trainer:latest",
                    "command": ["python", "train.py"],
                    "volumeMounts": [{"name": token, "readOnly": True, "mountPath": TOKEN_PATH}],
                }
            ],
            "volumes": [{"name": token, "projected": {"sources": TOKEN_SOURCES}}],
        },
    }


def review(obj: Obj, operation: str = "CREATE", resource: str = "pods") -> Obj:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": resource},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": resource},
            "namespace": "training",
            "operation": operation,
            "userInfo": {"username": "system:serviceaccount:kube-system:job-controller"},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def patched(obj: Obj, answer: Obj) -> Obj:
    """``obj`` after the response's patch, if any; the response must allow it."""
    response = answer["response"]
    assert response["allowed"] is True
    if "patch" not in response:
        return obj
    assert response["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(response["patch"]))
    result: Obj = jsonpatch.apply_patch(obj, ops)
    return result
