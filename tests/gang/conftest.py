"""A gang of real watcher processes against the fake API (tests/gang/cluster.py)."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.gang.cluster import Gang
from tests.kube.fake_api import ThreadedFakeApi

MakeGang = Callable[..., Gang]


@pytest.fixture
def make_gang(tmp_path: Path) -> Iterator[MakeGang]:
    made: list[tuple[Gang, ThreadedFakeApi]] = []

    def make(size: int, mode: str = "jobset", **extra: str) -> Gang:
        api = ThreadedFakeApi().__enter__()
        gang = Gang(api, tmp_path / f"gang{len(made)}", size, mode, dict(extra))
        made.append((gang, api))
        return gang.setup()

    yield make
    for gang, api in made:
        gang.close()
        errors = list(api.api.errors)
        api.__exit__(None, None, None)
        assert errors == [], "the watchers sent something the API schemas reject"
