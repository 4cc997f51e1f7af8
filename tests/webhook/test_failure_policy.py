"""The shipped MutatingWebhookConfiguration, as the API server applies it: labelled Pods or
namespaces are injected; with the webhook down, slow or untrusted, Pods are created
unchanged (failurePolicy Ignore)."""

import base64
import copy
from pathlib import Path

import pytest

from tests.kube.manifests import MANIFESTS, documents
from tests.webhook.apiserver import ApiServer, Obj, Rejected
from tests.webhook.certs import Certs, issue
from tests.webhook.ports import free_port
from tests.webhook.reviews import trainer_pod
from tests.webhook.server import running
from watcher.kube.pod_checks import check_pod
from watcher.webhook.tls import ReloadingContext

CONFIG = MANIFESTS / "webhook" / "base" / "mutatingwebhook.yaml"
ENABLED = {"pod-watcher.io/inject": "enabled"}


def config(certs: Certs) -> Obj:
    """The manifest with its caBundle set, as cert-manager or self-signed.sh set it."""
    (shipped,) = documents(CONFIG)
    for hook in shipped["webhooks"]:
        hook["clientConfig"]["caBundle"] = base64.b64encode(certs.ca_pem).decode()
    return shipped


def namespace(name: str, **labels: str) -> dict[str, str]:
    return {"kubernetes.io/metadata.name": name, **labels}


def injected(pod: Obj) -> bool:
    spec = pod["spec"]
    return check_pod(spec, "pod-watcher", 88, "/pod-watcher") == [] and bool(
        spec.get("initContainers")
    )


@pytest.mark.parametrize(
    ("pod_labels", "namespace_labels", "calls"),
    [
        (ENABLED, namespace("training"), ["pods.pod-watcher.io"]),
        ({}, namespace("training", **ENABLED), ["namespaces.pod-watcher.io"]),
        (ENABLED, namespace("training", **ENABLED),
         ["pods.pod-watcher.io", "namespaces.pod-watcher.io"]),
    ],
)  # fmt: skip
async def test_selected_pods_are_injected(
    tmp_path: Path, pod_labels: dict[str, str], namespace_labels: dict[str, str], calls: list[str]
) -> None:
    certs = issue(tmp_path)
    async with running(ReloadingContext(certs.cert, certs.key)) as port:
        server = ApiServer(config(certs), port)
        stored = await server.create_pod(trainer_pod(**pod_labels), namespace_labels)
    assert server.calls == calls and server.failures == []
    assert injected(stored)


@pytest.mark.parametrize(
    ("pod_labels", "namespace_labels"),
    [
        ({}, namespace("training")),
        ({"pod-watcher.io/inject": "disabled"}, namespace("training", **ENABLED)),
        (ENABLED, namespace("kube-system")),
        (ENABLED, namespace("pod-watcher", **ENABLED)),
    ],
)
async def test_other_pods_are_never_sent(
    tmp_path: Path, pod_labels: dict[str, str], namespace_labels: dict[str, str]
) -> None:
    certs = issue(tmp_path)
    async with running(ReloadingContext(certs.cert, certs.key)) as port:
        server = ApiServer(config(certs), port)
        pod = trainer_pod(**pod_labels)
        assert await server.create_pod(pod, namespace_labels) == pod
    assert server.calls == []


async def test_with_the_webhook_down_pods_are_created_unchanged(tmp_path: Path) -> None:
    certs = issue(tmp_path)
    server = ApiServer(config(certs), free_port())
    pod = trainer_pod(**ENABLED)
    stored = await server.create_pod(copy.deepcopy(pod), namespace("training", **ENABLED))
    assert stored == pod
    assert server.failures == [
        "pods.pod-watcher.io: ClientConnectorError",
        "namespaces.pod-watcher.io: ClientConnectorError",
    ]


async def test_with_failure_policy_fail_they_would_be_refused(tmp_path: Path) -> None:
    """What Ignore saves a training job from: the same call, the policy flipped."""
    certs = issue(tmp_path)
    strict = config(certs)
    for hook in strict["webhooks"]:
        hook["failurePolicy"] = "Fail"
    with pytest.raises(Rejected, match=r"pods\.pod-watcher\.io"):
        await ApiServer(strict, free_port()).create_pod(trainer_pod(**ENABLED), namespace("t"))


async def test_an_untrusted_certificate_is_a_failure_too(tmp_path: Path) -> None:
    certs, other = issue(tmp_path), issue(tmp_path / "other")
    async with running(ReloadingContext(other.cert, other.key)) as port:
        server = ApiServer(config(certs), port)
        pod = trainer_pod(**ENABLED)
        assert await server.create_pod(copy.deepcopy(pod), namespace("training")) == pod
    assert server.failures == ["pods.pod-watcher.io: ClientConnectorCertificateError"]
