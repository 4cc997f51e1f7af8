"""Configuration: environment over file, and every mistake named by variable or file key."""

import json
import os
from pathlib import Path

import pytest

from watcher.config.load import ConfigError, load_config
from watcher.config.preflight import preflight
from watcher.rules.packs import available_packs
from watcher.types import Action, FaultClass


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A clean WATCHER_ environment with the two required variables set."""
    for name in list(os.environ):
        if name.upper().startswith("WATCHER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("WATCHER_LOG_PATHS", f"{tmp_path}/logs/*.log")
    monkeypatch.setenv("WATCHER_STATE_DIR", str(tmp_path / "state"))
    return monkeypatch


def problems(env: pytest.MonkeyPatch, **variables: str) -> str:
    for name, value in variables.items():
        env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_config()
    return "\n".join(caught.value.problems)


def write(path: Path, text: str) -> Path:
    path.write_text(text, "utf-8")
    return path


def test_defaults(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = load_config()
    settings = config.settings
    assert settings.restart_exit_code == 88
    assert settings.http_port == 9188
    assert settings.termination_log == Path("/dev/termination-log")
    assert settings.max_restarts == 3
    assert settings.restart_window == 3600
    assert settings.actions[FaultClass.HARDWARE] is Action.EVICT
    assert settings.log_paths == (f"{tmp_path}/logs/*.log",)
    assert {rule.pack for rule in config.rules} == set(available_packs())


def test_comma_lists(env: pytest.MonkeyPatch) -> None:
    env.setenv("WATCHER_LOG_PATHS", " /a/*.log, /b/**/*.txt ,, ")
    env.setenv("WATCHER_DISABLE_RULES", "NcclWatchdogStuck,NcclError")
    config = load_config()
    assert config.settings.log_paths == ("/a/*.log", "/b/**/*.txt")
    assert {"NcclWatchdogStuck", "NcclError"}.isdisjoint(r.reason for r in config.rules)


@pytest.mark.parametrize("value", ["0", "1", "2", "128", "143", "255", "-1", "abc", "3.5"])
def test_restart_exit_code_refusals_name_the_variable(env: pytest.MonkeyPatch, value: str) -> None:
    assert f"WATCHER_RESTART_EXIT_CODE='{value}'" in problems(env, WATCHER_RESTART_EXIT_CODE=value)


@pytest.mark.parametrize("value", ["3", "42", "127"])
def test_restart_exit_code_accepted(env: pytest.MonkeyPatch, value: str) -> None:
    env.setenv("WATCHER_RESTART_EXIT_CODE", value)
    assert load_config().settings.restart_exit_code == int(value)


def test_missing_required_values(env: pytest.MonkeyPatch) -> None:
    env.delenv("WATCHER_LOG_PATHS")
    env.delenv("WATCHER_STATE_DIR")
    text = problems(env)
    assert "WATCHER_STATE_DIR is required" in text
    assert "nothing to watch: set WATCHER_LOG_PATHS" in text


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("WATCHER_HTTP_PORT", "70000", "less than or equal to 65535"),
        ("WATCHER_DRY_RUN", "maybe", "valid boolean"),
        ("WATCHER_MAX_RESTARTS", "-1", "greater than or equal to 0"),
        ("WATCHER_RESTART_WINDOW", "0", "greater than or equal to 1"),
        ("WATCHER_GPU", "cuda", "auto"),
        ("WATCHER_GPU", "dcgm", "needs WATCHER_DCGM_EXPORTER_URL"),
        ("WATCHER_RULE_PACKS", "nope", "unknown rule pack"),
        ("WATCHER_DISABLE_RULES", "NoSuchRule", "cannot disable NoSuchRule"),
        ("WATCHER_ACTIONS__HARDWARE", "explode", "Input should be"),
        ("WATCHER_ACTIONS__HARDWARE", "none", "is not one of"),
        ("WATCHER_RULES", "not json", "not valid JSON"),
        ("WATCHER_RULES", '[{"reason": "bad_name", "pattern": "x"}]', "CamelCase"),
    ],
)
def test_bad_values_name_the_variable(
    env: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    text = problems(env, **{name: value})
    assert name in text
    assert expected in text


def test_nested_action_override_keeps_other_defaults(env: pytest.MonkeyPatch) -> None:
    env.setenv("WATCHER_ACTIONS__HARDWARE", "hold")
    actions = load_config().settings.actions
    assert actions[FaultClass.HARDWARE] is Action.HOLD
    assert actions[FaultClass.TRANSIENT] is Action.RESTART


def test_file_values_and_env_override(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write(
        tmp_path / "watcher.yaml",
        "restart_exit_code: 77\nmax_restarts: 5\nrules:\n"
        "  - reason: MyFault\n    pattern: 'it broke'\n    fault_class: application\n",
    )
    env.setenv("WATCHER_CONFIG", str(path))
    env.setenv("WATCHER_RESTART_EXIT_CODE", "99")
    config = load_config()
    assert config.settings.restart_exit_code == 99
    assert config.settings.max_restarts == 5
    assert config.rules[-1].reason == "MyFault"


def test_json_file(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write(tmp_path / "watcher.json", json.dumps({"dry_run": True}))
    env.setenv("WATCHER_CONFIG", str(path))
    assert load_config().settings.dry_run is True


def test_file_errors_name_the_file_key_and_the_rule(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "watcher.yaml",
        "max_restart: 5\nrules:\n  - reason: Fine\n    pattern: ok\n"
        "  - reason: LookAround\n    pattern: 'a(?=b)'\n",
    )
    text = problems(env, WATCHER_CONFIG=str(path))
    assert f"{path}: key max_restart: unknown key (did you mean max_restarts?)" in text
    assert f"{path}: key rules[1] (reason LookAround)" in text
    assert "look-ahead" in text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("key: [unclosed", "not valid YAML"),
        ("- a list\n- at the top\n", "must be a mapping"),
        ("config: other.yaml\n", "cannot name another"),
    ],
)
def test_unusable_files(
    env: pytest.MonkeyPatch, tmp_path: Path, content: str, expected: str
) -> None:
    path = write(tmp_path / "watcher.yaml", content)
    assert expected in problems(env, WATCHER_CONFIG=str(path))


def test_missing_file(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    text = problems(env, WATCHER_CONFIG=str(tmp_path / "absent.yaml"))
    assert "WATCHER_CONFIG=" in text
    assert "cannot read it" in text


def test_empty_file_is_fine(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("WATCHER_CONFIG", str(write(tmp_path / "empty.yaml", "")))
    assert load_config().settings.max_restarts == 3


def test_a_misspelt_variable_is_refused_with_a_suggestion(env: pytest.MonkeyPatch) -> None:
    text = problems(env, WATCHER_LOG_PATH="/typo")
    assert text.startswith("WATCHER_LOG_PATH: no such setting (did you mean WATCHER_LOG_PATHS?)")


def test_an_unrelated_variable_is_warned_about(env: pytest.MonkeyPatch) -> None:
    env.setenv("WATCHER_SERVICE_HOST", "10.0.0.1")  # a Service named "watcher"
    (warning,) = load_config().warnings
    assert (
        warning
        == "unknown variable WATCHER_SERVICE_HOST is ignored: pod-watcher has no such setting"
    )


def test_empty_termination_log_disables_it(env: pytest.MonkeyPatch) -> None:
    env.setenv("WATCHER_TERMINATION_LOG", "")
    assert load_config().settings.termination_log is None


def test_preflight_creates_state_dir_and_checks_termination_log(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env.setenv("WATCHER_TERMINATION_LOG", str(tmp_path / "term"))
    assert preflight(load_config().settings) == []
    assert (tmp_path / "state").is_dir()
    env.setenv("WATCHER_TERMINATION_LOG", str(tmp_path / "missing-dir" / "term"))
    env.setenv("WATCHER_STATE_DIR", str(write(tmp_path / "a-file", "")))
    found = preflight(load_config().settings)
    assert any(
        p.startswith("WATCHER_STATE_DIR=") and "not a writable directory" in p for p in found
    )
    assert any(p.startswith("WATCHER_TERMINATION_LOG=") and "does not exist" in p for p in found)


def test_no_rules_at_all_is_warned_about(env: pytest.MonkeyPatch) -> None:
    env.setenv("WATCHER_RULE_PACKS", "none")
    config = load_config()
    assert config.rules == ()
    assert any("no log rules" in warning for warning in config.warnings)
