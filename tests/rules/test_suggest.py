"""'Did you mean' for rule reasons and pack names: the suggestions, and what the CLI
prints (text on stderr, exit 2) for a misspelt WATCHER_DISABLE_RULES, WATCHER_RULE_PACKS
or WATCHER_EXTRA_EXCLUDES."""

import subprocess
from pathlib import Path

import pytest

from tests.e2e.process import run_command
from watcher.rules.packs import available_packs, effective_rules
from watcher.rules.suggest import close_names

REASONS = sorted({rule.reason for rule in effective_rules(["all"], [], [])})


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("CudaOOM", "CudaOutOfMemory"),  # initials for a run of words
        ("HostOOM", "HostOutOfMemory"),
        ("cuda_out_of_memory", "CudaOutOfMemory"),  # same words, another spelling
        ("NCCLWATCHDOGTIMEOUT", "NcclWatchdogTimeout"),
        ("NcclWatchdogTimout", "NcclWatchdogTimeout"),  # a typo
        ("XidGpuFellOffBus", "XidGpuFallenOffBus"),  # a look-alike
    ],
)
def test_a_reason_typed_by_hand_finds_the_rule(typed: str, meant: str) -> None:
    assert close_names(typed, REASONS)[0] == meant


@pytest.mark.parametrize(("typed", "meant"), [("torch", "pytorch"), ("nvida", "nvidia")])
def test_a_pack_typed_by_hand_finds_the_pack(typed: str, meant: str) -> None:
    assert close_names(typed, available_packs()) == [meant]


@pytest.mark.parametrize("typed", ["MyOwnFault", "OOM", "gpu"])
def test_nothing_close_suggests_nothing(typed: str) -> None:
    assert close_names(typed, [*REASONS, *available_packs()]) == []


def check(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        "WATCHER_LOG_PATHS": str(tmp_path / "*.log"),
        "WATCHER_STATE_DIR": str(tmp_path / "state"),
        "WATCHER_TERMINATION_LOG": str(tmp_path / "termination-log"),
        "WATCHER_GPU": "off",
    }
    return run_command(["check"], {**base, **env}, cwd=tmp_path)


PREFIX = "pod-watcher: configuration error: "


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"WATCHER_DISABLE_RULES": "CudaOOM"},
            "WATCHER_DISABLE_RULES='CudaOOM': cannot disable CudaOOM: no such rule "
            "(did you mean CudaOutOfMemory?)",
        ),
        (
            {"WATCHER_DISABLE_RULES": "XidChain", "WATCHER_RULE_PACKS": "cuda"},
            "WATCHER_DISABLE_RULES='XidChain': cannot disable XidChain: "
            "its pack nvidia is not selected",
        ),
        (
            {"WATCHER_RULE_PACKS": "torch,nccl"},
            "WATCHER_RULE_PACKS='torch,nccl': unknown rule pack(s) torch "
            "(did you mean pytorch?); available: " + ", ".join(available_packs()),
        ),
        (
            {"WATCHER_EXTRA_EXCLUDES": '{"CudaOOM": ["retrying"]}'},
            'WATCHER_EXTRA_EXCLUDES=\'{"CudaOOM": ["retrying"]}\': cannot add excludes to '
            "CudaOOM (did you mean CudaOutOfMemory?): no such active rule",
        ),
    ],
    ids=["disable-rules", "pack-not-selected", "rule-packs", "extra-excludes"],
)
def test_the_cli_names_the_variable_and_suggests_the_name(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = check(tmp_path, **env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [PREFIX + message]
