"""Checks of single values that pydantic's types let through but the system would not:
paths the kernel refuses, hosts no resolver takes, globs that never match, names the
Kubernetes API would reject. Each raises ValueError with a message for the user."""

import ipaddress
import re
from pathlib import Path
from urllib.parse import urlsplit

from watcher import exitcodes
from watcher.logs.globs import GlobError, check_glob
from watcher.rules.regex import PatternError, compile_pattern

PATH_MAX = 4095
"""Bytes of a path Linux accepts (PATH_MAX less the NUL)."""
NAME_MAX = 255
"""Bytes of one path component."""
_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")


def usable_path(value: str) -> str:
    """A path the kernel can take: no NUL byte, at most PATH_MAX bytes, components of at
    most NAME_MAX bytes."""
    if "\0" in value:
        raise ValueError("a path cannot contain a NUL byte")
    size = len(value.encode("utf-8", "surrogateescape"))
    if size > PATH_MAX:
        raise ValueError(f"a path of {size} bytes; Linux takes at most {PATH_MAX}")
    for part in value.split("/"):
        if len(part.encode("utf-8", "surrogateescape")) > NAME_MAX:
            raise ValueError(f"a path component of more than {NAME_MAX} bytes: {part[:40]}...")
    return value


def usable_path_or_none(value: Path | None) -> Path | None:
    if value is not None:
        usable_path(str(value))
    return value


def listen_host(value: str) -> str:
    """An address to bind: empty (every address), an IP literal, or a host name."""
    if value == "" or _is_ip(value):
        return value
    if len(value) > 253 or not all(_LABEL.match(label) for label in value.split(".")):
        shown = value if len(value) <= 60 else value[:57] + "..."
        raise ValueError(f"{shown!r} is neither an IP address nor a host name")
    return value


def usable_glob(value: str) -> str:
    try:
        check_glob(value)
    except GlobError as exc:
        raise ValueError(f"{value[:200]!r}: {exc}") from None
    return value


def dns_label(value: str | None) -> str | None:
    """A Kubernetes name of one DNS label (a namespace, a container)."""
    if value is not None and not _DNS_LABEL.match(value):
        raise ValueError(f"{value[:80]!r} is not a DNS label (lower case, digits, '-', 63 at most)")
    return value


def dns_subdomain(value: str | None) -> str | None:
    """A Kubernetes object name (a Pod)."""
    if value is not None and not _DNS_SUBDOMAIN.match(value):
        raise ValueError(f"{value[:80]!r} is not a Kubernetes name (lower case, digits, '-', '.')")
    return value


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def http_url(value: str | None) -> str | None:
    """An http:// or https:// URL with a host and a port in range."""
    if value is None:
        return None
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{value[:200]!r} is not an http:// or https:// URL")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        raise ValueError(f"{value[:200]!r} is not a URL: {exc}") from None
    if not parts.hostname:
        raise ValueError(f"{value[:200]!r} has no host")
    listen_host(parts.hostname)
    return value


def usable_restart_code(value: int) -> int:
    """An exit code the watcher may use for a restart: not its own 0, 1, 2, not a signal's."""
    if value in exitcodes.RESERVED:
        raise ValueError(
            f"{value} is reserved (0 clean stop, 1 internal error, 2 configuration error)"
        )
    if value < 0:
        raise ValueError(f"{value} is negative: exit codes are 0..255, use one of 3..127")
    if value >= exitcodes.SIGNAL_BASE:
        raise ValueError(
            f"{value} is outside 3..127: 128 and above mean 'killed by a signal' "
            "(137 OOM kill, 143 SIGTERM)"
        )
    return value


def one_number_pattern(value: str | None) -> str | None:
    """An RE2 pattern with exactly one capture group (the number it reads)."""
    if value is None:
        return None
    try:
        compiled = compile_pattern(value)
    except PatternError as exc:
        raise ValueError(str(exc)) from None
    if compiled.groups != 1:
        raise ValueError(f"needs exactly one capture group for the number, has {compiled.groups}")
    return value
