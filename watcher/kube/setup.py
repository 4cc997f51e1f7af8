"""Whether the Kubernetes features are on, and the client they share."""

import logging
from collections.abc import Mapping

from watcher.config.settings import WatcherSettings
from watcher.kube.client import ApiError, KubeApi, api_configured, connect

log = logging.getLogger(__name__)


async def open_api(settings: WatcherSettings, environ: Mapping[str, str]) -> KubeApi | None:
    """The API client, or None with one log line saying why the features are off."""
    if settings.kubernetes == "off":
        log.info("Kubernetes features off (WATCHER_KUBERNETES=off)")
        return None
    source = api_configured(environ)
    if settings.pod_name is None or source is None:
        missing = (
            "WATCHER_POD_NAME"
            if settings.pod_name is None
            else "KUBECONFIG or an in-cluster service account"
        )
        log.info(
            "Kubernetes features off (Events, eviction, wiring and restart checks): no %s",
            missing,
        )
        return None
    try:
        api = await connect(
            settings.pod_name, settings.pod_namespace, settings.api_timeout, environ
        )
    except ApiError as exc:
        log.warning("Kubernetes features off: %s", exc)
        return None
    log.info(
        "Kubernetes features on",
        extra={"fields": {"pod": f"{api.pod.namespace}/{api.pod.name}", "config": source}},
    )
    return api
