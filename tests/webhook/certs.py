"""TLS material for the webhook tests: a CA of the test's own (trustme) and a serving
certificate for the Service's DNS name, written where `pod-watcher webhook` reads them."""

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme

HOST = "pod-watcher-webhook.pod-watcher.svc"
"""The name the API server checks: <service>.<namespace>.svc."""


@dataclass(frozen=True)
class Certs:
    ca: trustme.CA
    cert: Path
    key: Path
    ca_pem: bytes
    leaf: bytes
    """The serving certificate, DER."""

    def client(self) -> ssl.SSLContext:
        """A client that trusts this CA only, as the API server trusts the caBundle."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context


def issue(folder: Path, ca: trustme.CA | None = None, host: str = HOST) -> Certs:
    ca = ca or trustme.CA()
    served = ca.issue_cert(host)
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "tls.crt", folder / "tls.key"
    served.private_key_pem.write_to_path(str(key))
    cert.write_bytes(b"".join(blob.bytes() for blob in served.cert_chain_pems))
    leaf = ssl.PEM_cert_to_DER_cert(served.cert_chain_pems[0].bytes().decode())
    return Certs(ca, cert, key, ca.cert_pem.bytes(), leaf)
