"""answer(): an AdmissionReview in, the same Pod as inject makes it out (as a JSON Patch)."""

import kubernetes_validate
import pytest

from tests.webhook.reviews import Obj, patched, review, trainer_pod
from watcher.inject.documents import inject_documents
from watcher.inject.pieces import Options
from watcher.kube.pod_checks import check_pod
from watcher.webhook.review import ReviewError, answer


def test_a_pod_comes_out_as_inject_makes_it() -> None:
    pod = trainer_pod()
    request = review(pod)
    out = answer(request, Options())
    assert out["apiVersion"] == "admission.k8s.io/v1" and out["kind"] == "AdmissionReview"
    assert out["response"]["uid"] == request["request"]["uid"]
    mutated = patched(pod, out)
    assert mutated == inject_documents([pod], Options()).documents[0]
    spec = mutated["spec"]
    assert check_pod(spec, "pod-watcher", 88, "/pod-watcher") == []
    assert spec["serviceAccountName"] == "pod-watcher"
    assert spec["automountServiceAccountToken"] is False
    mounts = [m["mountPath"] for m in spec["containers"][0]["volumeMounts"]]
    assert mounts == ["/pod-watcher"], "the trainer keeps no API token"
    named = {**mutated, "metadata": {**mutated["metadata"], "name": "trainer-x1"}}
    for version in ("1.35.0", "1.36.0"):
        kubernetes_validate.validate(named, version, strict=True)


def test_a_second_review_of_the_result_patches_nothing() -> None:
    once = patched(trainer_pod(), answer(review(trainer_pod()), Options()))
    assert "patch" not in answer(review(once), Options())["response"]


def test_the_annotations_opt_out_and_name_the_trainer() -> None:
    pod = trainer_pod()
    pod["metadata"]["annotations"] = {"pod-watcher.io/inject": "disabled"}
    assert "patch" not in answer(review(pod), Options())["response"]
    pod = trainer_pod()
    pod["spec"]["containers"].append({"name": "proxy", "image": "p", "command": ["proxy"]})
    pod["spec"]["restartPolicy"] = "OnFailure"
    pod["metadata"]["annotations"] = {"pod-watcher.io/container": "trainer"}
    mutated = patched(pod, answer(review(pod), Options()))
    assert mutated["spec"]["containers"][0]["command"][:2] == ["python3", "/pod-watcher/launch"]
    assert mutated["spec"]["containers"][1]["command"] == ["proxy"]


def test_a_pod_inject_cannot_wire_is_admitted_unchanged_with_the_reason() -> None:
    pod = trainer_pod()
    del pod["spec"]["containers"][0]["command"]
    response = answer(review(pod), Options())["response"]
    assert response["allowed"] is True and "patch" not in response
    (warning,) = response["warnings"]
    assert warning.startswith(
        "pod-watcher: not injected: Pod/trainer-* at spec: container 'trainer' has no command"
    )


@pytest.mark.parametrize(("operation", "resource"), [("UPDATE", "pods"), ("CREATE", "secrets")])
def test_only_pod_creation_is_mutated(operation: str, resource: str) -> None:
    response = answer(review(trainer_pod(), operation, resource), Options())["response"]
    assert response == {"uid": response["uid"], "allowed": True}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "Pod"}, "not an AdmissionReview"),
        ({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1beta1"},
         "apiVersion 'admission.k8s.io/v1beta1': only admission.k8s.io/v1 is served"),
        ({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {}},
         "an AdmissionReview without request.uid"),
    ],
)  # fmt: skip
def test_what_is_not_a_review_is_refused(body: Obj, message: str) -> None:
    with pytest.raises(ReviewError, match=message):
        answer(body, Options())
