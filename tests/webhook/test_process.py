"""`pod-watcher webhook` as a process, with TLS made by the documented recipe
(manifests/webhook/self-signed.sh, openssl): it answers a real AdmissionReview, stops on
SIGTERM with 0, and refuses bad TLS files with 2."""

import asyncio
import shutil
import signal
import ssl
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.kube.manifests import MANIFESTS
from tests.webhook.certs import HOST
from tests.webhook.ports import free_port
from tests.webhook.reviews import patched, review, trainer_pod
from watcher.kube.pod_checks import check_pod

RECIPE = MANIFESTS / "webhook" / "self-signed.sh"
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")


def recipe(folder: Path) -> Path:
    result = subprocess.run(
        ["bash", str(RECIPE), "--out", str(folder)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]
    return folder


async def _healthy(port: int, client: ssl.SSLContext, deadline: float) -> None:
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while True:
            try:
                async with session.get(f"https://127.0.0.1:{port}/healthz", ssl=client,
                                       server_hostname=HOST) as answer:  # fmt: skip
                    if answer.status == 200:
                        return
            except aiohttp.ClientConnectorError:
                if loop.time() > deadline:
                    raise
            await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_the_process_serves_the_recipe_s_certificate(tmp_path: Path) -> None:
    certs = recipe(tmp_path / "tls")
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "watcher", "webhook", "--tls-cert", str(certs / "tls.crt"),
        "--tls-key", str(certs / "tls.key"), "--host", "127.0.0.1", "--port", str(port),
        "--log-format", "text", "--image", "registry.example/pod-watcher:1.0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        client = ssl.create_default_context(cafile=str(certs / "ca.crt"))
        await _healthy(port, client, asyncio.get_running_loop().time() + 30)
        pod = trainer_pod()
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.post(f"https://127.0.0.1:{port}/mutate", json=review(pod), ssl=client,
                         server_hostname=HOST) as answer,
        ):  # fmt: skip
            body = await answer.json()
        spec = patched(pod, body)["spec"]
        assert spec["initContainers"][0]["image"] == "registry.example/pod-watcher:1.0"
        assert check_pod(spec, "pod-watcher", 88, "/pod-watcher") == []
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.stdout is not None
    output = (await process.stdout.read()).decode()
    assert "webhook serving" in output and "patched=True" in output


def test_bad_tls_files_exit_2(tmp_path: Path) -> None:
    certs = recipe(tmp_path / "tls")
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "webhook", "--tls-cert", str(certs / "ca.key"),
         "--tls-key", str(certs / "tls.key"), "--port", str(free_port())],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"pod-watcher webhook: cannot load {certs / 'ca.key'} with {certs / 'tls.key'}"
    )
