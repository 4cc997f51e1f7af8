"""Configuration: a bad one exits 2 (never the restart code) and says what and where."""

import json
import socket
import subprocess
from pathlib import Path

import pytest

from tests.e2e.process import run_command, script_command
from tests.e2e.workload import Paths
from watcher import __version__

PREFIX = "pod-watcher: configuration error: "


def run(paths: Paths, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`pod-watcher <args>` with the test's files and ``env``; "<unset>" removes a variable."""
    full = {k: v for k, v in paths.env(**env).items() if v != "<unset>"}
    return run_command(args or ("run",), full, cwd=paths.root)


def assert_config_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.startswith(PREFIX), result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)
    return result.stderr


def write_config(paths: Paths, name: str, text: str) -> Path:
    path = paths.root / name
    path.write_text(text, "utf-8")
    return path


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0", "0 is reserved"),
        ("1", "1 is reserved"),
        ("2", "2 is reserved"),
        ("128", "128 is outside 3..127"),
        ("143", "143 is outside 3..127"),
        ("-1", "-1 is negative"),
        ("abc", "valid integer"),
    ],
)
def test_unusable_restart_exit_code(paths: Paths, value: str, reason: str) -> None:
    result = run(paths, WATCHER_RESTART_EXIT_CODE=value)
    message = assert_config_error(result, f"WATCHER_RESTART_EXIT_CODE={value!r}: ", reason)
    # Best effort: the reason is also what `kubectl describe pod` shows.
    assert paths.termination.read_text("utf-8") == message
    assert not paths.state.exists() or not (paths.state / "ledger.jsonl").exists()


def test_log_paths_missing(paths: Paths) -> None:
    result = run(paths, WATCHER_LOG_PATHS="<unset>")
    assert_config_error(result, "nothing to watch: set WATCHER_LOG_PATHS")
    assert "nothing to watch: set WATCHER_LOG_PATHS" in paths.termination.read_text("utf-8")


def test_state_dir_missing(paths: Paths) -> None:
    result = run(paths, WATCHER_STATE_DIR="<unset>")
    assert_config_error(result, "WATCHER_STATE_DIR is required")


def test_state_dir_unwritable(paths: Paths) -> None:
    blocker = paths.root / "a-file"
    blocker.write_text("", "utf-8")  # a directory under a regular file: unwritable, even as root
    result = run(paths, WATCHER_STATE_DIR=str(blocker / "state"))
    assert_config_error(result, f"WATCHER_STATE_DIR={blocker / 'state'}: not a writable directory")


def test_termination_log_in_a_missing_directory(paths: Paths) -> None:
    result = run(paths, WATCHER_TERMINATION_LOG=str(paths.root / "nope" / "termination-log"))
    assert_config_error(result, "WATCHER_TERMINATION_LOG=", "does not exist")


@pytest.mark.parametrize(
    ("env", "needles"),
    [
        ({"WATCHER_RULE_PACKS": "nope"}, ["WATCHER_RULE_PACKS='nope'", "unknown rule pack"]),
        ({"WATCHER_GPU": "dcgm"}, ["WATCHER_GPU='dcgm'", "WATCHER_DCGM_EXPORTER_URL"]),
        ({"WATCHER_GPU": "quantum"}, ["WATCHER_GPU='quantum'"]),
        ({"WATCHER_MAX_RESTARTS": "-1"}, ["WATCHER_MAX_RESTARTS='-1'"]),
        ({"WATCHER_RULES": "[{"}, ["WATCHER_RULES", "not valid JSON"]),
        ({"WATCHER_DISABLE_RULES": "NoSuchRule"}, ["WATCHER_DISABLE_RULES=", "NoSuchRule"]),
        ({"WATCHER_ACTIONS__HARDWARE": "none"}, ["WATCHER_ACTIONS__HARDWARE='none'"]),
    ],
)
def test_bad_variable(paths: Paths, env: dict[str, str], needles: list[str]) -> None:
    assert_config_error(run(paths, **env), *needles)


def test_user_rule_with_look_ahead(paths: Paths) -> None:
    rules = json.dumps([{"reason": "MyFault", "pattern": "(?=x)y"}])
    assert_config_error(run(paths, WATCHER_RULES=rules), "WATCHER_RULES=", "MyFault", "look-ahead")


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("restart_exit_cod: 77\n", ["key restart_exit_cod", "did you mean restart_exit_code?"]),
        (
            "rules:\n  - reason: Good\n    pattern: ok\n  - reason: LooksAhead\n"
            "    pattern: '(?=x)y'\n",
            ["key rules[1] (reason LooksAhead)", "rule LooksAhead", "look-ahead"],
        ),
        (
            "rules:\n  - reason: not_camel\n    pattern: boom\n",
            ["key rules[0] (reason not_camel).reason", "must be CamelCase"],
        ),
        ("restart_exit_code: 143\n", ["key restart_exit_code", "143 is outside"]),
        ("config: other.yaml\n", ["key 'config'"]),
        ("- a list\n", ["top level must be a mapping"]),
        ("rules: [\n  {reason: X\n", ["not valid YAML"]),
    ],
)
def test_bad_config_file(paths: Paths, text: str, needles: list[str]) -> None:
    config = write_config(paths, "watcher.yaml", text)
    result = run(paths, WATCHER_CONFIG=str(config))
    assert_config_error(result, str(config), *needles)
    assert str(config) in paths.termination.read_text("utf-8")


def test_http_port_in_use(paths: Paths) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(paths, WATCHER_HTTP_PORT=str(port))
    assert_config_error(result, f"WATCHER_HTTP_PORT={port}: cannot listen")


def test_config_file_that_does_not_exist(paths: Paths) -> None:
    missing = paths.root / "missing.yaml"
    assert_config_error(
        run(paths, WATCHER_CONFIG=str(missing)), f"WATCHER_CONFIG={missing}: cannot read it"
    )


def test_check_prints_the_effective_configuration(paths: Paths) -> None:
    config = write_config(
        paths,
        "watcher.json",
        json.dumps(
            {
                "restart_exit_code": 77,
                "max_restarts": 5,
                "rules": [{"reason": "MyFault", "pattern": "my fault", "severity": "warning"}],
            }
        ),
    )
    result = run(paths, "check", WATCHER_CONFIG=str(config), WATCHER_RESTART_EXIT_CODE="99")
    assert result.returncode == 0, result.stderr
    effective = json.loads(result.stdout)
    settings = effective["settings"]
    assert settings["restart_exit_code"] == 99  # the environment wins over the file
    assert settings["max_restarts"] == 5  # the file wins over the default
    assert settings["log_paths"] == [str(paths.logs / "*.log")]
    assert settings["state_dir"] == str(paths.state)
    reasons = [rule["reason"] for rule in effective["rules"]]
    assert "NcclWatchdogTimeout" in reasons
    assert reasons[-1] == "MyFault"
    assert effective["rules"][-1]["severity"] == "warning"
    assert effective["warnings"] == []
    assert not paths.termination.exists()


def test_check_refuses_a_misspelt_variable(paths: Paths) -> None:
    result = run(paths, "check", WATCHER_MAX_RESTART="9")
    assert_config_error(
        result, "WATCHER_MAX_RESTART: no such setting (did you mean WATCHER_MAX_RESTARTS?)"
    )


def test_check_with_a_bad_configuration_exits_2(paths: Paths) -> None:
    assert_config_error(run(paths, "check", WATCHER_GPU="dcgm"), "WATCHER_GPU='dcgm'")


def test_version(paths: Paths) -> None:
    result = run(paths, "version")
    assert (result.returncode, result.stdout) == (0, f"pod-watcher {__version__}\n")


def test_version_of_the_console_script(paths: Paths) -> None:
    result = subprocess.run(
        [*script_command(), "version"], capture_output=True, text=True, timeout=20, check=False
    )
    assert (result.returncode, result.stdout) == (0, f"pod-watcher {__version__}\n")


def test_unknown_command_is_a_usage_error(paths: Paths) -> None:
    result = run(paths, "explode")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


@pytest.mark.parametrize("command", ["run", "check"])
def test_a_probe_url_that_can_never_work_exits_2(paths: Paths, command: str) -> None:
    """A typo'd port used to pass `check` and then restart the Pod until the budget was
    spent; now it is refused at start, before anything is watched."""
    probes = json.dumps([{"type": "http", "url": "http://127.0.0.1:99999/healthz"}])
    result = run(paths, command, WATCHER_PROBES=probes)
    assert_config_error(
        result,
        "WATCHER_PROBES=",
        "an http probe needs a url like http://127.0.0.1:8080/healthz: "
        "'http://127.0.0.1:99999/healthz' has a port outside 1..65535",
    )
