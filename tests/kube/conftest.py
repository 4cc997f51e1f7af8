"""Fixtures: a fake Kubernetes API on the test's loop, and a kubernetes_asyncio client for it,
configured from a kubeconfig file as the watcher's client is (KUBECONFIG)."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio import client, config

from tests.kube.fake_api import FakeApi, write_kubeconfig


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeApi]:
    async with FakeApi() as api:
        yield api


@pytest.fixture
def kubeconfig(fake_api: FakeApi, tmp_path: Path) -> Path:
    assert fake_api.token is not None
    return write_kubeconfig(tmp_path / "kubeconfig", fake_api.url, fake_api.token)


async def core_api(kubeconfig: Path) -> tuple[client.ApiClient, Any]:
    """A client exactly as `load_kube_config` sets it up from the file; close the first.
    The CoreV1Api is typed Any: its stubs want model objects, the watcher sends dicts."""
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    api_client = client.ApiClient(configuration)
    return api_client, client.CoreV1Api(api_client)


@pytest.fixture
async def core(kubeconfig: Path) -> AsyncIterator[Any]:
    api_client, core_v1 = await core_api(kubeconfig)
    async with api_client:
        yield core_v1
