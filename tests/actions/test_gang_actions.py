"""The gang's early write in the last words: a restart this Pod decided carries it (and a
hung one never holds the exit past the deadline); a Pod following its gang writes nothing."""

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from tests.actions.test_actions import decision, ledger_lines
from tests.conftest import FakeClock
from watcher.actions.actions import Actions
from watcher.actions.annotate import Annotator
from watcher.actions.contract import ActionConfig
from watcher.gang import reasons
from watcher.state.ledger import Ledger


class Hook:
    key = "jobset/default/js"

    def __init__(self, hang: bool = False) -> None:
        self.hang = hang
        self.writes = 0

    def next_generation(self) -> int | None:
        return 4

    def early_annotations(self) -> Mapping[str, str]:
        return {"jobset.sigs.k8s.io/in-place-restart-attempt": "4"}

    async def early_write(self) -> None:
        self.writes += 1
        if self.hang:
            await asyncio.Event().wait()


def actions(tmp_path: Path, clock: FakeClock, hook: Hook, patches: list[dict[str, str]]) -> Actions:
    async def annotate(annotations: Mapping[str, str]) -> None:
        patches.append(dict(annotations))

    def save() -> Callable[[], object]:
        return lambda: None

    return Actions(
        ActionConfig(restart_exit_code=88, termination_log=None, timeout=0.5),
        ledger=Ledger(tmp_path, clock=clock), clock=clock, save_cursors=save,
        annotator=Annotator(annotate), gang=hook,
    )  # fmt: skip


async def test_a_decided_restart_writes_early_and_records_the_generation(
    tmp_path: Path, clock: FakeClock
) -> None:
    hook, patches = Hook(), list[dict[str, str]]()
    outcome = await actions(tmp_path, clock, hook, patches).carry_out(decision())
    assert outcome.exit_code == 88 and hook.writes == 1
    (patch,) = patches
    assert patch["jobset.sigs.k8s.io/in-place-restart-attempt"] == "4"
    (entry,) = ledger_lines(tmp_path)
    details = entry["details"]
    assert isinstance(details, dict)
    assert (details["gang"], details["gang_generation"]) == (hook.key, 4)


async def test_a_hung_early_write_never_holds_the_exit(tmp_path: Path, clock: FakeClock) -> None:
    hook = Hook(hang=True)
    loop = asyncio.get_running_loop()
    began = loop.time()
    outcome = await actions(tmp_path, clock, hook, []).carry_out(decision())
    assert outcome.exit_code == 88
    assert loop.time() - began < 5.0  # the deadline is 0.5 s; generous for a busy machine


async def test_a_follower_writes_nothing(tmp_path: Path, clock: FakeClock) -> None:
    hook, patches = Hook(), list[dict[str, str]]()
    marks = {reasons.FOLLOW: True, reasons.GANG_KEY: hook.key, reasons.GENERATION: 3}
    followed = replace(decision(), details={**decision().details, **marks})
    outcome = await actions(tmp_path, clock, hook, patches).carry_out(followed)
    assert outcome.exit_code == 88
    assert hook.writes == 0 and patches == []
    (entry,) = ledger_lines(tmp_path)
    assert entry["details"]["gang_generation"] == 3  # type: ignore[index]
