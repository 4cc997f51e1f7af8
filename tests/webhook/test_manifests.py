"""manifests/webhook: valid for 1.35 and 1.36, scoped to Pod creation, failing open, and
consistent (the Service reaches the Deployment, the Deployment's arguments are the real
command's, the TLS Secret and the certificate's names are the ones used)."""

import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest

from tests.inject.shapes import load_all
from tests.kube.manifests import MANIFESTS, Obj, documents, walk
from tests.webhook.certs import HOST
from watcher.cli import _parser

WEBHOOK = MANIFESTS / "webhook"
BASE = [doc for path in sorted((WEBHOOK / "base").glob("*.yaml")) for doc in documents(path)]
OBJECTS = [doc for doc in BASE if doc["kind"] != "Kustomization"]
CERT_MANAGER = documents(WEBHOOK / "cert-manager" / "certificate.yaml")


def of_kind(kind: str, found: list[Obj] = OBJECTS) -> Obj:
    (obj,) = [doc for doc in found if doc["kind"] == kind]
    return obj


@pytest.mark.parametrize("version", ["1.35.0", "1.36.0"])
@pytest.mark.parametrize("obj", OBJECTS, ids=[d["kind"] for d in OBJECTS])
def test_every_object_validates_strictly(obj: Obj, version: str) -> None:
    kubernetes_validate.validate(obj, version, strict=True)


def test_the_webhooks_fail_open_and_see_only_pod_creation() -> None:
    hooks = of_kind("MutatingWebhookConfiguration")["webhooks"]
    assert len(hooks) == 2
    for hook in hooks:
        assert hook["failurePolicy"] == "Ignore"
        assert hook["sideEffects"] == "None"
        assert hook["admissionReviewVersions"] == ["v1"]
        assert 1 <= hook["timeoutSeconds"] <= 10
        assert hook["rules"] == [{
            "operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
            "resources": ["pods"], "scope": "Namespaced",
        }]  # fmt: skip
        (excluded,) = [
            e for e in hook["namespaceSelector"]["matchExpressions"]
            if e["key"] == "kubernetes.io/metadata.name"
        ]  # fmt: skip
        assert excluded["operator"] == "NotIn"
        assert {"kube-system", "pod-watcher"} <= set(excluded["values"])


def test_the_service_reaches_the_deployment() -> None:
    (kustomization,) = [doc for doc in BASE if doc["kind"] == "Kustomization"]
    deployment, service = of_kind("Deployment"), of_kind("Service")
    template = deployment["spec"]["template"]
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    (container,) = template["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] in ports
    for hook in of_kind("MutatingWebhookConfiguration")["webhooks"]:
        target = hook["clientConfig"]["service"]
        assert target["name"] == service["metadata"]["name"]
        assert target["namespace"] == kustomization["namespace"]
        assert target["port"] == port["port"] and target["path"] == "/mutate"
    assert f"{service['metadata']['name']}.{kustomization['namespace']}.svc" == HOST


def test_the_deployment_runs_the_real_command_with_its_secret() -> None:
    spec = of_kind("Deployment")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    args = _parser().parse_args(container["args"])
    assert args.command == "webhook"
    assert int(container["ports"][0]["containerPort"]) == args.port
    (mount,) = container["volumeMounts"]
    assert mount["readOnly"] is True
    for path in (args.tls_cert, args.tls_key):
        assert path.parent == Path(mount["mountPath"])
    (volume,) = spec["volumes"]
    certificate = of_kind("Certificate", CERT_MANAGER)
    assert volume["secret"]["secretName"] == certificate["spec"]["secretName"]
    assert HOST in certificate["spec"]["dnsNames"]
    assert spec["automountServiceAccountToken"] is False, "the webhook needs no API access"
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["runAsNonRoot"] is True
    assert context["capabilities"] == {"drop": ["ALL"]}
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS"
        assert container[probe]["httpGet"]["path"] == "/healthz"


def test_cert_manager_injects_the_ca_of_the_certificate() -> None:
    (kustomization,) = documents(WEBHOOK / "cert-manager" / "kustomization.yaml")
    (patch,) = kustomization["patches"]
    certificate, issuer = of_kind("Certificate", CERT_MANAGER), of_kind("Issuer", CERT_MANAGER)
    name = f"{kustomization['namespace']}/{certificate['metadata']['name']}"
    assert f"cert-manager.io/inject-ca-from: {name}" in patch["patch"]
    issuer_ref = {"kind": "Issuer", "name": issuer["metadata"]["name"]}
    assert certificate["spec"]["issuerRef"] == issuer_ref
    assert issuer["spec"] == {"selfSigned": {}}


def test_no_host_access() -> None:
    for obj in OBJECTS:
        for key, value in walk(obj):
            assert key != "hostPath"
            assert not (key in ("hostNetwork", "hostPID", "privileged") and value)


def _kustomize() -> list[str] | None:
    if found := shutil.which("kustomize"):
        return [found, "build"]
    if found := shutil.which("kubectl"):
        return [found, "kustomize"]
    return None


@pytest.mark.skipif(_kustomize() is None, reason="no kustomize or kubectl")
@pytest.mark.parametrize("folder", ["base", "cert-manager"])
def test_kustomize_builds_it(folder: str) -> None:
    command = _kustomize()
    assert command is not None
    result = subprocess.run(
        [*command, str(WEBHOOK / folder)], capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    built = load_all(result.stdout)
    namespaced = [d for d in built if d["kind"] in ("Deployment", "Service", "Certificate")]
    assert namespaced and all(d["metadata"]["namespace"] == "pod-watcher" for d in namespaced)
    for obj in built:
        if obj["apiVersion"] != "cert-manager.io/v1":
            kubernetes_validate.validate(obj, "1.36.0", strict=True)
    hooks = of_kind("MutatingWebhookConfiguration", built)
    annotations = hooks["metadata"].get("annotations", {})
    assert ("cert-manager.io/inject-ca-from" in annotations) == (folder == "cert-manager")
