"""The progress tests run on the event loop's own clock, fast-forwarded by looptime: a
test that asks for the ``clock`` fixture gets it, and looptime, automatically. (Tests on
the real clock, which block the loop as SIGSTOP does, run in real time.)"""

from pathlib import Path

import pytest

from tests.conftest import LoopClock

HERE = Path(__file__).parent


@pytest.fixture
def clock() -> LoopClock:
    return LoopClock()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Pytest hands this hook every item of the session, not only this folder's: a test
    elsewhere with a ``clock`` fixture of its own must keep the real loop."""
    for item in items:
        if item.path.is_relative_to(HERE) and "clock" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.looptime)
