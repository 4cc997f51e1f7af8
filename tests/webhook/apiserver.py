"""The API server's side of a mutating webhook, as far as Pod creation needs it: which
webhooks of a MutatingWebhookConfiguration a Pod matches (rules, namespaceSelector,
objectSelector), the call over TLS to the Service's name trusting caBundle alone, within
timeoutSeconds, the patch applied, and failurePolicy when the call fails. Written from the
Kubernetes docs ("Dynamic Admission Control"); the Service is reached on a loopback port."""

import base64
import copy
import json
import ssl
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jsonpatch

from tests.webhook.reviews import review

Obj = dict[str, Any]


class Rejected(Exception):
    """The API server refuses the Pod (failurePolicy Fail and the webhook failed)."""


@dataclass
class ApiServer:
    config: Obj
    """The MutatingWebhookConfiguration, caBundle filled in."""
    port: int
    """Where the Service's port 443 leads."""
    calls: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    async def create_pod(self, pod: Obj, namespace_labels: dict[str, str]) -> Obj:
        """The Pod as stored, after every matching webhook."""
        for hook in self.config["webhooks"]:
            if not _matches(hook, pod, namespace_labels):
                continue
            self.calls.append(hook["name"])
            try:
                pod = await self._call(hook, pod)
            except (OSError, TimeoutError, aiohttp.ClientError, ValueError) as exc:
                self.failures.append(f"{hook['name']}: {type(exc).__name__}")
                if hook.get("failurePolicy", "Fail") == "Fail":
                    raise Rejected(hook["name"]) from exc
        return pod

    async def _call(self, hook: Obj, pod: Obj) -> Obj:
        client = hook["clientConfig"]
        service = client["service"]
        context = ssl.create_default_context(cadata=base64.b64decode(client["caBundle"]).decode())
        host = f"{service['name']}.{service['namespace']}.svc"
        timeout = aiohttp.ClientTimeout(total=hook.get("timeoutSeconds", 10))
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(f"https://127.0.0.1:{self.port}{service.get('path', '/')}",
                         json=review(pod), ssl=context, server_hostname=host) as answer,
        ):  # fmt: skip
            answer.raise_for_status()
            response = (await answer.json())["response"]
        if not response["allowed"]:
            raise Rejected(response.get("status", {}).get("message", hook["name"]))
        if "patch" not in response:
            return pod
        ops = json.loads(base64.b64decode(response["patch"]))
        patched: Obj = jsonpatch.apply_patch(copy.deepcopy(pod), ops)
        return patched


def _matches(hook: Obj, pod: Obj, namespace_labels: dict[str, str]) -> bool:
    rules = any(
        "CREATE" in rule["operations"] and "" in rule["apiGroups"] and "pods" in rule["resources"]
        for rule in hook["rules"]
    )
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return (
        rules
        and _selects(hook.get("namespaceSelector") or {}, namespace_labels)
        and _selects(hook.get("objectSelector") or {}, labels)
    )


def _selects(selector: Obj, labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector; the empty one selects everything."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or ():
        key, operator, values = expression["key"], expression["operator"], expression.get("values")
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True
