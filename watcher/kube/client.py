"""The few Kubernetes API calls the watcher makes, each under a deadline.

`kubernetes_asyncio` costs ~35 MB and ~200 ms to import, so it is imported here, lazily,
only when the API is configured. Bodies are plain dicts: the client serialises them
as they are, and the tests validate them against the Kubernetes schemas.
"""

import asyncio
import logging
import os
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
T = TypeVar("T")


@dataclass(frozen=True)
class PodRef:
    name: str
    namespace: str


class ApiError(Exception):
    """The API refused, failed or did not answer in time. ``status`` is the HTTP code, if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class KubeApi:
    """Reads the own Pod, posts Events, evicts the own Pod."""

    def __init__(self, core: Any, api_client: Any, pod: PodRef, timeout: float) -> None:
        self._core = core
        self._api_client = api_client
        self.pod = pod
        self.timeout = timeout
        self.pod_uid: str | None = None
        """The own Pod's UID, once it was read: Events name it."""

    async def read_pod(self) -> dict[str, Any]:
        """The own Pod as the API's JSON (camelCase keys)."""
        pod = await self._call(
            self._core.read_namespaced_pod(self.pod.name, self.pod.namespace), "read own Pod"
        )
        result: dict[str, Any] = self._api_client.sanitize_for_serialization(pod)
        self.pod_uid = (result.get("metadata") or {}).get("uid") or self.pod_uid
        return result

    async def create_event(self, body: Mapping[str, Any]) -> None:
        await self._call(
            self._core.create_namespaced_event(self.pod.namespace, body), "create Event"
        )

    @property
    def api_client(self) -> Any:
        """The kubernetes_asyncio ``ApiClient`` (for watches of other objects)."""
        return self._api_client

    async def annotate(self, annotations: Mapping[str, str]) -> dict[str, Any]:
        """Set annotations on the own Pod (a JSON merge patch of metadata.annotations);
        returns the Pod as the answer has it (camelCase keys), which doubles as a read."""
        body = {"metadata": {"annotations": dict(annotations)}}
        pod = await self._call(
            self._core.patch_namespaced_pod(
                self.pod.name,
                self.pod.namespace,
                body,
                _content_type="application/merge-patch+json",
            ),
            "annotate own Pod",
        )
        result: dict[str, Any] = self._api_client.sanitize_for_serialization(pod)
        self.pod_uid = (result.get("metadata") or {}).get("uid") or self.pod_uid
        return result

    async def evict(self) -> None:
        body = {
            "apiVersion": "policy/v1",
            "kind": "Eviction",
            "metadata": {"name": self.pod.name, "namespace": self.pod.namespace},
        }
        await self._call(
            self._core.create_namespaced_pod_eviction(self.pod.name, self.pod.namespace, body),
            "evict own Pod",
        )

    async def close(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self._api_client.close()
        except (TimeoutError, OSError):
            pass

    async def _call(self, call: Awaitable[T], what: str) -> T:
        from kubernetes_asyncio.client.exceptions import ApiException

        try:
            async with asyncio.timeout(self.timeout):
                return await call
        except TimeoutError:
            raise ApiError(f"{what}: no answer within {self.timeout:g}s") from None
        except ApiException as exc:
            raise ApiError(f"{what}: {exc.status} {exc.reason}", exc.status) from None
        except OSError as exc:  # aiohttp's connection errors are OSErrors
            raise ApiError(f"{what}: {exc}") from None


def api_configured(environ: Mapping[str, str]) -> str | None:
    """Where API access would come from, or None: KUBECONFIG, else the in-cluster account."""
    if environ.get("KUBECONFIG"):
        return "kubeconfig"
    if environ.get("KUBERNETES_SERVICE_HOST") and (SERVICE_ACCOUNT / "token").exists():
        return "in-cluster"
    return None


async def connect(
    pod_name: str,
    namespace: str | None,
    api_timeout: float,
    environ: Mapping[str, str] | None = None,
) -> KubeApi:
    """A client for the own Pod. Raises ApiError when the configuration cannot be loaded."""
    environ = os.environ if environ is None else environ
    from kubernetes_asyncio import client, config
    from kubernetes_asyncio.config import ConfigException

    configuration = client.Configuration()
    try:
        if environ.get("KUBECONFIG"):
            await config.load_kube_config(
                config_file=environ["KUBECONFIG"], client_configuration=configuration
            )
        else:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        api_client = client.ApiClient(configuration)  # reads the CA: ssl.SSLError is an OSError
    except (ConfigException, OSError, ValueError) as exc:
        raise ApiError(f"cannot load the Kubernetes client configuration: {exc}") from None
    pod = PodRef(pod_name, namespace or _own_namespace())
    return KubeApi(client.CoreV1Api(api_client), api_client, pod, api_timeout)


def _own_namespace() -> str:
    try:
        return (SERVICE_ACCOUNT / "namespace").read_text("utf-8").strip() or "default"
    except OSError:
        return "default"
