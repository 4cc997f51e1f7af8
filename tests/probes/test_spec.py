"""Probe configuration: Kubernetes' field names, defaults, and refusals that say where."""

import json
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from watcher.config.load import ConfigError, load_config
from watcher.probes.spec import ProbeSpec
from watcher.types import FaultClass

HTTP = {"type": "http", "url": "http://127.0.0.1:8080/healthz"}
TCP = {"type": "tcp", "host": "127.0.0.1", "port": 29500}

BAD: list[tuple[dict[str, Any], str]] = [
    ({"type": "http"}, "an http probe needs a url like http://127.0.0.1:8080/healthz"),
    ({"type": "http", "url": "127.0.0.1:8080/healthz"}, "an http probe needs a url"),
    ({"type": "http", "url": "ftp://host/x"}, "an http probe needs a url"),
    (
        {"type": "http", "url": "http://127.0.0.1:99999/healthz"},
        "'http://127.0.0.1:99999/healthz' has a port outside 1..65535",
    ),
    ({"type": "http", "url": "http://127.0.0.1:0/x"}, "has a port outside 1..65535"),
    ({"type": "http", "url": "http://:8080/x"}, "has no host"),
    (
        {"type": "http", "url": "http://127.0.0.1:8080/", "headers": {"X": "a\r\nEvil: 1"}},
        "a value cannot contain CR, LF or NUL",
    ),
    ({"type": "tcp", "host": "127.0.0.1"}, "a tcp probe needs a host and a port"),
    ({"type": "tcp", "port": 29500}, "a tcp probe needs a host and a port"),
    ({**TCP, "port": 0}, "greater than or equal to 1"),
    ({**HTTP, "periodSeconds": 1, "timeoutSeconds": 2}, "timeoutSeconds must not exceed"),
    ({**HTTP, "periodSeconds": 0}, "greater than or equal to 0.01"),
    ({**HTTP, "failureThreshold": 0}, "greater than or equal to 1"),
    ({**HTTP, "reason": "probe_failed"}, "must be CamelCase"),
    ({**HTTP, "bodyRegex": "(unclosed"}, "bodyRegex"),
    ({**HTTP, "faultClass": "cosmic"}, "Input should be"),
    ({**HTTP, "perodSeconds": 5}, "perodSeconds"),
    ({"type": "grpc", "host": "x", "port": 1}, "Input should be 'http' or 'tcp'"),
]
BAD_METHOD = {**HTTP, "method": "GET /healthz"}


def test_kubernetes_field_names_and_defaults() -> None:
    spec = ProbeSpec.model_validate(
        {
            **HTTP,
            "initialDelaySeconds": 30,
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 4,
            "successThreshold": 2,
            "expectedStatus": [200, 204],
            "bodyRegex": "ok",
            "faultClass": "application",
            "reason": "TrainerUnhealthy",
        }
    )
    assert (spec.initial_delay, spec.period, spec.timeout) == (30, 5, 2)
    assert (spec.failure_threshold, spec.success_threshold) == (4, 2)
    assert spec.expected_status == (200, 204)
    assert spec.body_regex == "ok"
    assert spec.fault_class is FaultClass.APPLICATION
    assert spec.reason == "TrainerUnhealthy"
    assert spec.label == "http http://127.0.0.1:8080/healthz"
    assert not spec.accepts(201)

    default = ProbeSpec.model_validate(TCP)
    assert (default.initial_delay, default.period, default.timeout) == (0, 10, 1)
    assert (default.failure_threshold, default.success_threshold) == (3, 1)
    assert (default.reason, default.fault_class) == ("ProbeFailed", FaultClass.HANG)
    assert default.label == "tcp 127.0.0.1:29500"
    assert [default.accepts(s) for s in (199, 200, 302, 399, 400)] == [
        False,
        True,
        True,
        True,
        False,
    ]


def test_python_names_are_accepted_too() -> None:
    spec = ProbeSpec.model_validate({**TCP, "period": 2, "failure_threshold": 5, "name": "rdzv"})
    assert (spec.period, spec.failure_threshold, spec.label) == (2, 5, "rdzv")


@pytest.mark.parametrize(("fields", "expected"), BAD)
def test_spec_refusals(fields: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ProbeSpec.model_validate(fields)
    assert expected in str(caught.value)


def test_an_unusable_method_is_refused_at_load_time() -> None:
    """aiohttp raises ValueError for it on every check, which ends the probe monitor's task
    group (every probe stops) instead of failing one check or the configuration."""
    with pytest.raises(ValidationError, match="method"):
        ProbeSpec.model_validate(BAD_METHOD)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A clean WATCHER_ environment with a state directory and nothing else to watch."""
    for name in list(os.environ):
        if name.upper().startswith("WATCHER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("WATCHER_STATE_DIR", str(tmp_path / "state"))
    return monkeypatch


def problems(env: pytest.MonkeyPatch, value: str) -> str:
    env.setenv("WATCHER_PROBES", value)
    with pytest.raises(ConfigError) as caught:
        load_config()
    return "\n".join(caught.value.problems)


def test_watcher_probes_from_the_environment(env: pytest.MonkeyPatch) -> None:
    probes = [{**HTTP, "periodSeconds": 5, "failureThreshold": 3}, TCP]
    env.setenv("WATCHER_PROBES", json.dumps(probes))
    settings = load_config().settings  # probes alone are something to watch
    assert [p.type for p in settings.probes] == ["http", "tcp"]
    assert settings.probes[0].period == 5
    assert settings.probes[1].port == 29500


@pytest.mark.parametrize(("fields", "expected"), BAD)
def test_watcher_probes_refusals_name_the_variable(
    env: pytest.MonkeyPatch, fields: dict[str, Any], expected: str
) -> None:
    value = json.dumps([TCP, fields])
    text = problems(env, value)
    assert f"WATCHER_PROBES={value!r}" in text
    assert expected in text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("not json", "WATCHER_PROBES: not valid JSON"),
        ('{"type": "tcp"}', "WATCHER_PROBES="),
        ('[{"type": "tcp", "host": "h", "port": "x"}]', "valid integer"),
    ],
)
def test_watcher_probes_malformed(env: pytest.MonkeyPatch, value: str, expected: str) -> None:
    assert expected in problems(env, value)


def test_probe_errors_in_the_config_file_name_the_key(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "watcher.yaml"
    path.write_text("probes:\n  - type: tcp\n    host: 127.0.0.1\n", "utf-8")
    env.setenv("WATCHER_CONFIG", str(path))
    with pytest.raises(ConfigError) as caught:
        load_config()
    text = "\n".join(caught.value.problems)
    assert f"{path}: key probes[0]" in text
    assert "a tcp probe needs a host and a port" in text
