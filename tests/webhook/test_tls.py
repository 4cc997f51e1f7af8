"""Real AdmissionReviews over real TLS against the running webhook application."""

import os
from pathlib import Path

import aiohttp
import pytest

from tests.webhook.certs import issue
from tests.webhook.reviews import patched, review, trainer_pod
from tests.webhook.server import peer_certificate, post, running
from watcher.kube.pod_checks import check_pod
from watcher.webhook.tls import ReloadingContext, TlsError


async def test_the_webhook_mutates_a_pod_over_tls(tmp_path: Path) -> None:
    certs = issue(tmp_path)
    async with running(ReloadingContext(certs.cert, certs.key)) as port:
        pod = trainer_pod()
        request = review(pod)
        status, body = await post(port, certs.client(), request)
    assert status == 200
    assert body["response"]["uid"] == request["request"]["uid"]
    spec = patched(pod, body)["spec"]
    assert spec["initContainers"][0]["name"] == "pod-watcher"
    assert check_pod(spec, "pod-watcher", 88, "/pod-watcher") == []


async def test_a_client_that_does_not_trust_the_ca_gets_no_answer(tmp_path: Path) -> None:
    certs = issue(tmp_path)
    stranger = issue(tmp_path / "other")
    async with running(ReloadingContext(certs.cert, certs.key)) as port:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await post(port, stranger.client(), review(trainer_pod()))


async def test_garbage_is_a_400(tmp_path: Path) -> None:
    certs = issue(tmp_path)
    async with running(ReloadingContext(certs.cert, certs.key)) as port:
        status, body = await post(port, certs.client(), {"kind": "Pod"})
    assert (status, body) == (400, {"error": "not an AdmissionReview"})


async def test_a_renewed_certificate_is_served_at_the_next_handshake(tmp_path: Path) -> None:
    """cert-manager rewrites the Secret's files; no restart."""
    first = issue(tmp_path)
    tls = ReloadingContext(first.cert, first.key)
    async with running(tls) as port:
        before = await peer_certificate(port, first.client())
        renewed = issue(tmp_path, ca=first.ca)
        stamp = os.stat(renewed.cert).st_mtime + 5
        os.utime(renewed.cert, (stamp, stamp))  # a coarse clock could hide the change
        after = await peer_certificate(port, first.client())
        status, _ = await post(port, first.client(), review(trainer_pod()))
    assert (before, after, status) == (first.leaf, renewed.leaf, 200)


async def test_a_half_written_renewal_keeps_the_last_good_certificate(tmp_path: Path) -> None:
    certs = issue(tmp_path)
    tls = ReloadingContext(certs.cert, certs.key)
    async with running(tls) as port:
        assert await peer_certificate(port, certs.client()) == certs.leaf
        certs.key.write_text("-----BEGIN PRIVATE KEY-----\ntrunc", "utf-8")
        stamp = os.stat(certs.key).st_mtime + 5
        os.utime(certs.key, (stamp, stamp))
        assert await peer_certificate(port, certs.client()) == certs.leaf


def test_unreadable_files_are_refused_at_start(tmp_path: Path) -> None:
    certs = issue(tmp_path)
    with pytest.raises(TlsError, match="cannot read the TLS files"):
        ReloadingContext(tmp_path / "missing.crt", certs.key)
    with pytest.raises(TlsError, match=f"cannot load {certs.key} with {certs.key}"):
        ReloadingContext(certs.key, certs.key)
