"""A probe as configured: Kubernetes' probe fields (camelCase accepted), plus what to expect.

`WATCHER_PROBES='[{"type": "http", "url": "http://127.0.0.1:8080/healthz",
"periodSeconds": 5, "failureThreshold": 3}, {"type": "tcp", "host": "127.0.0.1",
"port": 29500}]'`, or a `probes:` list in the config file.
"""

from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from watcher.rules.regex import PatternError, compile_pattern
from watcher.rules.rule import CAMEL_CASE
from watcher.types import FaultClass

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class ProbeSpec(BaseModel):
    """One HTTP or TCP check of the workload."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["http", "tcp"]
    name: str | None = None
    """Shown in logs, /status and the finding; defaults to the target."""
    url: str | None = None
    """HTTP: the URL to request."""
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    expected_status: tuple[int, ...] = Field(default=(), alias="expectedStatus")
    """Accepted status codes; empty means 200-399, as Kubernetes does."""
    body_regex: str | None = Field(default=None, alias="bodyRegex")
    """HTTP: the first 64 KiB of the body must match (RE2)."""
    host: str | None = None
    """TCP: the host to connect to."""
    port: int | None = Field(default=None, ge=1, le=65535)
    initial_delay: float = Field(default=0.0, ge=0, alias="initialDelaySeconds")
    period: float = Field(default=10.0, gt=0, alias="periodSeconds")
    timeout: float = Field(default=1.0, gt=0, alias="timeoutSeconds")
    failure_threshold: int = Field(default=3, ge=1, alias="failureThreshold")
    success_threshold: int = Field(default=1, ge=1, alias="successThreshold")
    reason: str = "ProbeFailed"
    """CamelCase reason of the finding when the probe fails ``failureThreshold`` times."""
    fault_class: FaultClass = Field(default=FaultClass.HANG, alias="faultClass")

    @field_validator("reason")
    @classmethod
    def _camel_case(cls, value: str) -> str:
        if not CAMEL_CASE.match(value):
            raise ValueError(f"reason {value!r} must be CamelCase, like TrainerUnhealthy")
        return value

    @field_validator("method")
    @classmethod
    def _http_method(cls, value: str) -> str:
        method = value.upper()
        if method not in HTTP_METHODS:
            raise ValueError(f"method {value!r} is not one of {', '.join(HTTP_METHODS)}")
        return method

    @field_validator("body_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                compile_pattern(value)
            except PatternError as exc:
                raise ValueError(f"bodyRegex: {exc}") from None
        return value

    @model_validator(mode="after")
    def _target(self) -> Self:
        if self.type == "http":
            _check_url(self.url or "")
        elif not self.host or self.port is None:
            raise ValueError("a tcp probe needs a host and a port")
        if self.timeout > self.period:
            raise ValueError("timeoutSeconds must not exceed periodSeconds")
        return self

    @field_validator("headers")
    @classmethod
    def _one_line_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if any(c in name + text for c in "\r\n\0") or not name.strip():
                raise ValueError(f"header {name!r}: a name and a value on one line, please")
        return value

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return f"http {self.url}" if self.type == "http" else f"tcp {self.host}:{self.port}"

    def accepts(self, status: int) -> bool:
        return status in self.expected_status if self.expected_status else 200 <= status < 400


def _check_url(url: str) -> None:
    """A URL a check can ever reach: http(s), a host, a port in 1..65535. A typo here
    would fail every check, so it is a configuration error, not a runtime finding."""
    needs = "an http probe needs a url like http://127.0.0.1:8080/healthz"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{needs}: {url!r} has no http or https scheme")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{needs}: {url!r} has a port outside 1..65535") from None
    if not parts.hostname:
        raise ValueError(f"{needs}: {url!r} has no host")
    if port == 0:
        raise ValueError(f"{needs}: {url!r} has a port outside 1..65535")
