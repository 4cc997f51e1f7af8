"""Checks of single values that pydantic's types let through but the system would not:
paths the kernel refuses, hosts no resolver takes, globs that never match, names the
Kubernetes API would reject. Each raises ValueError with a message for the user."""

import ipaddress
import re
from pathlib import Path

from watcher.logs.globs import GlobError, check_glob

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
