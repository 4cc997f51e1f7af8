"""The server's TLS context, reloaded when its files change (cert-manager renews them in
place): each handshake looks at the files' change times, so no timer and no restart."""

import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


class TlsError(Exception):
    """A certificate or key that cannot be loaded."""


@dataclass
class ReloadingContext:
    cert: Path
    key: Path

    def __post_init__(self) -> None:
        self._stamp = self._stat()
        self.context = self._load()
        self._current = self.context
        self.context.sni_callback = self._on_hello

    def _stat(self) -> tuple[float, float]:
        try:
            return (os.stat(self.cert).st_mtime, os.stat(self.key).st_mtime)
        except OSError as exc:
            raise TlsError(f"cannot read the TLS files: {exc}") from None

    def _load(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(f"cannot load {self.cert} with {self.key}: {exc}") from None
        return context

    def _on_hello(self, connection: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
        try:
            stamp = self._stat()
            if stamp != self._stamp:
                self._current, self._stamp = self._load(), stamp
                log.info("TLS certificate reloaded", extra={"fields": {"cert": str(self.cert)}})
        except TlsError as exc:  # half-written during a renewal: keep the last good one
            log.warning("TLS certificate not reloaded: %s", exc)
        connection.context = self._current
