"""The progress tests run on the event loop's own clock, fast-forwarded by looptime: a
test that asks for the ``clock`` fixture gets it, and looptime, automatically. (Tests on
the real clock, which block the loop as SIGSTOP does, run in real time.)"""

import pytest

from tests.conftest import LoopClock


@pytest.fixture
def clock() -> LoopClock:
    return LoopClock()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "clock" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.looptime)
