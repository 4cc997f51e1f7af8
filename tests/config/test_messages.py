"""What a user reads when the configuration is wrong, through the real CLI: the text on
stderr and the exit code (2: never the restart code), for `run` and `check`."""

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.process import run_command

PREFIX = "pod-watcher: configuration error: "


def cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`pod-watcher <args>` with a log glob, a state dir and no termination log, plus
    ``env``; a value "<unset>" removes the variable."""
    base = {
        "WATCHER_LOG_PATHS": str(tmp_path / "logs" / "*.log"),
        "WATCHER_STATE_DIR": str(tmp_path / "state"),
        "WATCHER_TERMINATION_LOG": str(tmp_path / "termination-log"),
        "WATCHER_HTTP_HOST": "127.0.0.1",
        "WATCHER_HTTP_PORT": "0",
        "WATCHER_GPU": "off",
    }
    full = {k: v for k, v in {**base, **env}.items() if v != "<unset>"}
    return run_command(args or ("run",), full, cwd=tmp_path)


def refused(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The problems of a configuration error (exit 2), one per line of stderr."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith(PREFIX) for line in lines), result.stderr
    return [line.removeprefix(PREFIX) for line in lines]


def config_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "watcher.yaml"
    path.write_text(text, "utf-8")
    return str(path)


@pytest.mark.parametrize("command", ["run", "check"])
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max_restart: 5\n", "key max_restart: unknown key (did you mean max_restarts?)"),
        (
            "restart_exit_cod: 77\n",
            "key restart_exit_cod: unknown key (did you mean restart_exit_code?)",
        ),
        (
            "rules:\n  - reason: MyFault\n    patern: boom\n",
            "key rules[0] (reason MyFault).patern: unknown key (did you mean pattern?)",
        ),
        (
            "probes:\n  - type: tcp\n    port: 1\n    periodSecond: 5\n",
            "key probes[0].periodSecond: unknown key (did you mean periodSeconds?)",
        ),
        (
            "actions:\n  hardwar: hold\n",
            "key actions.hardwar: unknown key 'hardwar' (did you mean hardware?): the keys "
            "are 'transient', 'application', 'hardware', 'infrastructure', 'hang' or 'platform'",
        ),
        ("wibble: 1\n", "key wibble: unknown key"),
    ],
)
def test_an_unknown_file_key_is_named_with_the_key_it_was_meant_to_be(
    tmp_path: Path, command: str, text: str, expected: str
) -> None:
    path = config_file(tmp_path, text)
    problems = refused(cli(tmp_path, command, WATCHER_CONFIG=path))
    assert f"{path}: {expected}" in problems
    if expected.endswith("unknown key"):  # nothing alike: no guess
        assert f"{path}: {expected}" == problems[-1]


@pytest.mark.parametrize("command", ["run", "check"])
@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("WATCHER_MAX_RESTART", "WATCHER_MAX_RESTARTS"),
        ("WATCHER_MAXRESTARTS", "WATCHER_MAX_RESTARTS"),
        ("WATCHER_RESTRAT_WINDOW", "WATCHER_RESTART_WINDOW"),
        ("WATCHER_GPU_POLL_INTERVALL", "WATCHER_GPU_POLL_INTERVAL"),
        ("WATCHER_ACTION__HARDWARE", "WATCHER_ACTIONS__HARDWARE"),
        ("WATCHER_ACTIONS_HARDWARE", "WATCHER_ACTIONS__HARDWARE"),
        ("watcher_dry_runn", "WATCHER_DRY_RUN"),
    ],
)
def test_a_misspelt_setting_in_the_environment_is_refused(
    tmp_path: Path, command: str, name: str, meant: str
) -> None:
    problems = refused(cli(tmp_path, command, **{name: "hold"}))
    assert problems == [
        f"{name}: no such setting (did you mean {meant}?); a misspelt setting is refused "
        "so that its default does not silently stay in place"
    ]
    if command == "run":
        assert name in (tmp_path / "termination-log").read_text("utf-8")


def test_a_typo_is_reported_with_the_other_problems(tmp_path: Path) -> None:
    problems = refused(cli(tmp_path, "check", WATCHER_MAX_RESTART="9", WATCHER_GPU="quantum"))
    assert problems[0].startswith("WATCHER_MAX_RESTART: no such setting")
    assert problems[1].startswith("WATCHER_GPU='quantum': ")


@pytest.mark.parametrize(
    "name",
    [
        "WATCHER_NODE_NAME",  # two slips from WATCHER_POD_NAME, but a name of its own
        "WATCHER_SERVICE_HOST",  # Kubernetes service links for a Service named "watcher"
        "WATCHER_PORT",
        "WATCHER_PORT_9188_TCP_ADDR",
        "WATCHER_IMAGE",
    ],
)
def test_an_unrelated_watcher_variable_is_only_a_warning(tmp_path: Path, name: str) -> None:
    result = cli(tmp_path, "check", **{name: "10.0.0.1"})
    assert result.returncode == 0, result.stderr
    warnings = json.loads(result.stdout)["warnings"]
    assert warnings == [f"unknown variable {name} is ignored: pod-watcher has no such setting"]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "WATCHER_RULES",
            json.dumps({"reason": "MyFault", "pattern": "boom"}),
            "must be a list, not a single mapping: even one goes in a list ([{...}])",
        ),
        (
            "WATCHER_PROBES",
            json.dumps({"type": "tcp", "port": 29500}),
            "must be a list, not a single mapping: even one goes in a list ([{...}])",
        ),
    ],
)
def test_a_single_object_where_a_list_belongs(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    for command in ("run", "check"):
        problems = refused(cli(tmp_path, command, **{name: value}))
        assert problems == [f"{name}={value!r}: {expected}"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "rules:\n  reason: MyFault\n  pattern: boom\n",
            "key rules: must be a list, not a single mapping: even one goes in a list "
            "(in YAML, start it with '- '; in JSON, [{...}])",
        ),
        (
            "extra_excludes:\n  NcclError: 'my benign variant'\n",
            "key extra_excludes.NcclError: must be a list, not a single string: even one "
            "goes in a list (['...'])",
        ),
    ],
)
def test_a_single_item_where_a_list_belongs_in_the_file(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = config_file(tmp_path, text)
    assert refused(cli(tmp_path, "check", WATCHER_CONFIG=path)) == [f"{path}: {expected}"]


def test_nothing_to_watch_names_every_source_the_gpu_included(tmp_path: Path) -> None:
    problems = refused(cli(tmp_path, "run", WATCHER_LOG_PATHS="<unset>", WATCHER_GPU="auto"))
    assert problems == [
        "nothing to watch: set WATCHER_LOG_PATHS (comma-separated globs of log files), "
        "WATCHER_LAUNCHER_DIR (the workload runs through the launcher), "
        "WATCHER_PROBES, WATCHER_HEARTBEAT_FILE or a GPU backend (WATCHER_GPU=nvml, "
        "nvidia-smi or dcgm)"
    ]


@pytest.mark.parametrize("backend", ["nvidia-smi", "nvml"])
def test_a_gpu_only_configuration_checks(tmp_path: Path, backend: str) -> None:
    result = cli(tmp_path, "check", WATCHER_LOG_PATHS="<unset>", WATCHER_GPU=backend)
    assert result.returncode == 0, result.stderr
    settings = json.loads(result.stdout)["settings"]
    assert (settings["log_paths"], settings["gpu"]) == ([], backend)
