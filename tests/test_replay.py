"""`pod-watcher replay` and `rules`: same chunks and matcher as the live path, grep-like exits."""

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.cli import run_cli
from watcher.config.settings import DEFAULT_ACTIONS
from watcher.replay import Replayer
from watcher.rules.rule import Rule
from watcher.types import Action, FaultClass, Severity

RULES = (
    Rule(reason="Boom", pattern="BOOM-[0-9]+", fault_class=FaultClass.APPLICATION),
    Rule(reason="Meh", pattern="meh", severity=Severity.WARNING),
    Rule(reason="Cuda", pattern="CUDA error", context_lines=2),
)


def replayer(chunk: int = 4096, max_line: int = 4096) -> Replayer:
    return Replayer(RULES, DEFAULT_ACTIONS, max_line=max_line, chunk=chunk)


def hits(path: Path, **sizes: int) -> list[tuple[int, str, int]]:
    return [(h.line, h.rule.reason, h.offset) for h in replayer(**sizes).replay(str(path))]


def reference(data: bytes) -> list[tuple[int, str, int]]:
    found, offset = [], 0
    for number, line in enumerate(data.split(b"\n"), start=1):
        for rule, token in ((RULES[0], b"BOOM-"), (RULES[1], b"meh"), (RULES[2], b"CUDA error")):
            if token in line and (rule is not RULES[0] or line.split(b"BOOM-")[1][:1].isdigit()):
                found.append((number, rule.reason, offset))
        offset += len(line) + 1
    return found


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from([b"step", b"BOOM-7 x", b"meh", b"", b"y" * 3000, b"CUDA error: z"]),
        max_size=60,
    ),
    st.sampled_from([4096, 8192]),
)
def test_line_numbers_and_offsets_match_a_line_by_line_reading(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], chunk: int
) -> None:
    path = tmp_path_factory.mktemp("replay") / "log"
    data = b"\n".join(lines)
    path.write_bytes(data)
    assert hits(path, chunk=chunk, max_line=1 << 20) == reference(data)


def test_last_line_without_newline_counts(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"one\ntwo\nBOOM-1 at the end")
    assert hits(path) == [(3, "Boom", 8)]


def test_context_lines_that_arrived_with_the_match(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(
        b"RuntimeError: CUDA error: an illegal memory access\nhint one\nhint two\nnext\n"
    )
    (hit,) = replayer().replay(str(path))
    assert hit.evidence == (
        "RuntimeError: CUDA error: an illegal memory access",
        "hint one",
        "hint two",
    )
    assert hit.action is Action.RESTART


def test_long_line_is_scanned_in_pieces_and_counted_once(tmp_path: Path) -> None:
    path = tmp_path / "log"
    path.write_bytes(b"a\n" + b"x" * 50_000 + b" BOOM-9 " + b"x" * 50_000 + b"\nBOOM-2\n")
    assert hits(path) == [(2, "Boom", 2), (3, "Boom", 100_011)]


NCCL = (
    "[rank1]:[E1126 10:00:00.0 ProcessGroupNCCL.cpp:632] [Rank 1] Watchdog caught collective "
    "operation timeout: WorkNCCL(SeqNum=9, OpType=ALLREDUCE) ran for 600000 milliseconds\n"
)


def test_replay_exits_like_grep_and_prints_json(tmp_path: Path) -> None:
    quiet, loud = tmp_path / "quiet.log", tmp_path / "loud.log"
    quiet.write_text("step 1\nNCCL INFO all good\n")
    loud.write_text("step 1\n" + NCCL)
    assert run_cli("replay", str(quiet)).returncode == 0
    result = run_cli("replay", "--format", "json", str(quiet), str(loud))
    assert result.returncode == 1, result.stderr
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["file"] == str(loud)
    assert record["line"] == 2
    assert (record["reason"], record["severity"]) == ("NcclWatchdogTimeout", "fatal")
    assert (record["fault_class"], record["action"]) == ("transient", "restart")
    assert record["message"]


def test_replay_bad_input_exits_2(tmp_path: Path) -> None:
    missing = run_cli("replay", str(tmp_path / "nope.log"))
    assert missing.returncode == 2
    assert (
        missing.stderr
        == f"pod-watcher: cannot read {tmp_path}/nope.log: No such file or directory\n"
    )
    bad = run_cli("replay", str(tmp_path), env={"WATCHER_RULE_PACKS": "nope"})
    assert bad.returncode == 2
    assert "WATCHER_RULE_PACKS" in bad.stderr


def test_replay_names_the_reason_for_each_file_it_cannot_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.log"
    os.mkfifo(fifo)
    good = tmp_path / "good.log"
    good.write_text("step 1\n")
    result = run_cli("replay", str(good), str(tmp_path / "gone.log"), str(tmp_path), str(fifo))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"pod-watcher: cannot read {tmp_path}/gone.log: No such file or directory",
        f"pod-watcher: cannot read {tmp_path}: it is a directory",
        f"pod-watcher: cannot read {fifo}: not a regular file",
    ]


def test_replay_of_clean_files_says_so_in_one_line(tmp_path: Path) -> None:
    one, two = tmp_path / "one.log", tmp_path / "two.log"
    one.write_text("step 1 loss 0.3\nstep 2 loss 0.2\n")
    two.write_text("NCCL INFO all good\nno newline at the end")
    rules = len(json.loads(run_cli("rules", "--format", "json").stdout))
    for args in ((), ("--format", "json")):
        result = run_cli("replay", *args, str(one), str(two))
        assert result.returncode == 0
        assert result.stdout == ""  # the output stays the findings alone
        assert result.stderr == f"pod-watcher: nothing found in 2 files (4 lines, {rules} rules)\n"
    warned = tmp_path / "warned.log"
    warned.write_text("meh\n")
    config = tmp_path / "watcher.yaml"
    config.write_text("rules:\n  - reason: Meh\n    pattern: meh\n    severity: warning\n")
    result = run_cli("replay", str(warned), env={"WATCHER_CONFIG": str(config)})
    assert (result.returncode, result.stderr) == (0, "")  # a warning was found: no summary
    assert result.stdout.startswith(f"{warned}:1: Meh [warning")


def test_replay_uses_the_users_rules_and_excludes(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("my own failure\n" + NCCL.replace("ALLREDUCE", "ALLREDUCE benign-drill"))
    config = tmp_path / "watcher.yaml"
    config.write_text(
        "rules:\n  - reason: MyFailure\n    pattern: my own failure\n"
        "extra_excludes:\n  NcclWatchdogTimeout: ['benign-drill']\n"
    )
    result = run_cli("replay", "--format", "json", str(log), env={"WATCHER_CONFIG": str(config)})
    assert [json.loads(line)["reason"] for line in result.stdout.splitlines()] == ["MyFailure"]


def test_rules_lists_the_effective_rules(tmp_path: Path) -> None:
    text = run_cli("rules", env={"WATCHER_DISABLE_RULES": "NcclError"})
    assert text.returncode == 0
    assert "NcclWatchdogTimeout (nccl): fatal, transient -> restart" in text.stdout
    assert "NcclError " not in text.stdout
    records = json.loads(run_cli("rules", "--format", "json").stdout)
    by_reason = {r["reason"]: r for r in records}
    assert by_reason["NcclInvalidUsage"]["action"] == "restart"
    assert by_reason["NcclIbAsyncPortError"]["action"] == "warn"
    real = by_reason["NcclWatchdogTimeout"]["real_logs"]  # from watcher/rules/corpus_stats.json
    assert real["fatal_matched"] >= 1 and real["fatal_excerpts"] >= 300
    assert (real["benign_matched"], real["benign_checked"] >= 150) == (0, True)
    assert "    real logs: matched " in text.stdout


def test_cuda_hint_lines_travel_with_the_error(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text(
        "[rank0]: RuntimeError: CUDA error: an illegal memory access was encountered\n"
        "[rank0]: CUDA kernel errors might be asynchronously reported at some other API call, "
        "so the stacktrace below might be incorrect.\n"
        "[rank0]: For debugging consider passing CUDA_LAUNCH_BLOCKING=1\n"
        "[rank0]: Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.\n"
        "[rank0]: step 12 done\n"
    )
    result = run_cli("replay", "--format", "json", str(log))
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["reason"] == "CudaIllegalAddress"
    assert len(record["evidence"]) == 4
    assert record["evidence"][3].endswith("to enable device-side assertions.")
