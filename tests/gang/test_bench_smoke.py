"""`python -m bench.gang --smoke` works (three watchers, one gang restart per mode) and
prints checks only, no figures."""

import pytest

from tests.test_bench_smoke import FIGURE, bench


@pytest.mark.slow
def test_gang_smoke_reports_its_checks_and_no_figures() -> None:
    done = bench("bench.gang", "--smoke")
    assert done.returncode == 0, done.stderr
    assert "every one exited 88, barrier lifted" in done.stdout
    assert "jobset mode, 3 watchers: requests within 3N + 10" in done.stdout
    assert "lease mode, 3 watchers: requests within 3N + 10" in done.stdout
    assert not FIGURE.search(done.stdout), done.stdout
