"""Last words: written within their deadline, whatever hangs, and the exit code comes back."""

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import FakeClock
from watcher.actions.actions import Actions
from watcher.actions.contract import ActionConfig, Outcome
from watcher.actions.termination import LIMIT, termination_message, truncate_utf8
from watcher.state.ledger import Ledger, LedgerEntry
from watcher.types import Action, Decision, FaultClass, Finding, Severity
from watcher.workload.shared import SharedDir


def decision(
    action: Action = Action.RESTART, evidence: str = "boom line", dry: bool = False
) -> Decision:
    found = Finding(
        source="log", reason="NcclWatchdogTimeout", severity=Severity.FATAL,
        fault_class=FaultClass.TRANSIENT, message="collective timed out", at=1.0,
        evidence=(evidence,), file="/logs/train.log", offset=4096,
    )  # fmt: skip
    details: dict[str, object] = {"restarts_in_window": 1, "max_restarts": 3, "window_s": 3600.0}
    return Decision(action, found, "NcclWatchdogTimeout (transient): exit 88", dry, details)


def make_actions(
    tmp_path: Path,
    clock: FakeClock,
    term: Path | None,
    saved: list[int],
    launcher: SharedDir | None = None,
    *,
    before_exit: Callable[[], object] | None = None,
) -> Actions:
    def save_cursors() -> Callable[[], object]:
        return lambda: saved.append(1)

    return Actions(
        ActionConfig(restart_exit_code=88, termination_log=term, timeout=0.5),
        ledger=Ledger(tmp_path, clock=clock), clock=clock, save_cursors=save_cursors,
        launcher=launcher, before_exit=before_exit,
    )  # fmt: skip


def ledger_lines(tmp_path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]


async def test_restart_writes_ledger_termination_log_and_cursors(
    tmp_path: Path, clock: FakeClock
) -> None:
    saved: list[int] = []
    term = tmp_path / "termination-log"
    code = (await make_actions(tmp_path, clock, term, saved).carry_out(decision())).exit_code
    assert code == 88
    (entry,) = ledger_lines(tmp_path)
    assert entry["action"] == "restart"
    assert entry["exit_code"] == 88
    assert entry["offset"] == 4096
    assert entry["evidence"] == ["boom line"]
    message = term.read_text()
    assert "reason: NcclWatchdogTimeout" in message
    assert "file: /logs/train.log (byte 4096)" in message
    assert "restart 2 of at most 3 per 3600s" in message
    assert f"id {entry['id']}" in message
    assert message.endswith("boom line\n")
    assert saved == [1]


async def test_a_hanging_step_cannot_delay_the_exit_past_the_deadline(
    tmp_path: Path, clock: FakeClock
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening a FIFO for writing blocks until a reader comes: none will
    started = time.monotonic()
    code = (await make_actions(tmp_path, clock, fifo, []).carry_out(decision())).exit_code
    elapsed = time.monotonic() - started
    assert code == 88
    assert 0.4 < elapsed < 1.5
    assert ledger_lines(tmp_path)[0]["action"] == "restart"


async def test_a_failing_step_is_logged_and_skipped(tmp_path: Path, clock: FakeClock) -> None:
    outcome = await make_actions(tmp_path, clock, tmp_path / "no" / "dir", []).carry_out(decision())
    code = outcome.exit_code
    assert code == 88
    assert len(ledger_lines(tmp_path)) == 1


async def test_hold_is_recorded_and_keeps_running(tmp_path: Path, clock: FakeClock) -> None:
    actions = make_actions(tmp_path, clock, tmp_path / "term", [])
    assert await actions.carry_out(decision(Action.HOLD)) == Outcome()
    assert [e["action"] for e in ledger_lines(tmp_path)] == ["hold"]
    assert not (tmp_path / "term").exists()


async def test_the_hook_before_an_exit_runs_once_the_exit_is_certain(
    tmp_path: Path, clock: FakeClock
) -> None:
    calls: list[int] = []

    def before_exit() -> None:  # the restart is on the record by then
        calls.append(len(ledger_lines(tmp_path)))

    actions = make_actions(tmp_path, clock, tmp_path / "term", [], before_exit=before_exit)
    assert await actions.carry_out(decision(Action.HOLD)) == Outcome()
    assert await actions.carry_out(decision(dry=True)) == Outcome()
    assert calls == []
    assert (await actions.carry_out(decision())).exit_code == 88
    assert calls == [2]  # the hold, then the restart


async def test_dry_run_and_warnings_write_nothing(tmp_path: Path, clock: FakeClock) -> None:
    actions = make_actions(tmp_path, clock, tmp_path / "term", [])
    assert await actions.carry_out(decision(dry=True)) == Outcome()
    assert await actions.carry_out(decision(Action.WARN)) == Outcome()
    assert not (tmp_path / "ledger.jsonl").exists()
    assert not (tmp_path / "term").exists()


def test_termination_message_stays_within_the_kubelet_limit(tmp_path: Path) -> None:
    huge = "é" * 5000
    entry = LedgerEntry("restart", "NcclWatchdogTimeout", 1.0)
    message = termination_message(decision(evidence=huge), entry, tmp_path / "ledger.jsonl")
    assert len(message.encode("utf-8")) <= LIMIT
    assert message.startswith("pod-watcher: NcclWatchdogTimeout")
    assert message.endswith("…\n")


def test_truncate_never_splits_a_character() -> None:
    for limit in range(5, 40):
        cut = truncate_utf8("ab€" * 20, limit)
        assert len(cut.encode("utf-8")) <= limit
    assert truncate_utf8("short", 100) == "short"


async def test_a_restart_is_stamped_with_the_launchers_newest_start(
    tmp_path: Path, clock: FakeClock
) -> None:
    """The log line of start 2 can be decided on before the start itself reached the policy:
    the ledger must still name start 2, or the next start looks like a foreign restart."""
    from watcher.launcher.channel import Channel
    from watcher.launcher.settings import Settings

    home = tmp_path / "shared"
    for _ in range(2):
        channel = Channel(Settings(str(home)))
        channel.record("start", pid=os.getpid())
    stale = decision()
    stale = Decision(stale.action, stale.finding, stale.explanation,
                     details={**stale.details, "launcher_start": 1})  # fmt: skip
    saved: list[int] = []
    actions = make_actions(tmp_path, clock, None, saved, launcher=SharedDir(home))
    assert (await actions.carry_out(stale)).exit_code == 88
    (entry,) = ledger_lines(tmp_path)
    assert entry["details"]["launcher_start"] == 2  # type: ignore[index]
    verdict = json.loads((home / "run" / "verdict.json").read_text())
    assert verdict["start"] == 2 and verdict["verdict"] == "restart"
