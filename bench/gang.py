"""Gang restart: `python -m bench.gang [--smoke] [--runs N] [--size N]`.

1. Latency: N (32) real `pod-watcher` processes, each with its own fake Pod, in JobSet
   mode against the fake API and the fake JobSet controller. A fatal line in one Pod's
   log; measured from the write to the moment every watcher has exited 88, over the runs
   (20); between two runs every Pod is restarted in place (the test's kubelet) and the
   gang waits at its barrier until it lifts. Goal: <= 2 s median, <= 5 s p99.
2. API requests per gang restart, counted at the fake server from the gang's barrier
   down to the gang's barrier down again after one fault, for N = 8, 16, 32, in JobSet
   and Lease mode. Goal: <= 3N + 10.
"""

import argparse
import logging
import random
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.e2e.workload import NCCL_TIMEOUT, append
from tests.gang.cluster import Gang
from tests.kube.fake_api import ThreadedFakeApi

READY = 120.0
"""Seconds a whole gang may take to start (N interpreters on a small machine)."""


def started_gang(root: Path, api: ThreadedFakeApi, size: int, mode: str) -> Gang:
    # the watcher's default API timeout (the tests' 1 s retries under this load)
    extra = {"WATCHER_API_TIMEOUT": "2"}
    gang = Gang(api, root, size, mode, extra, max_restarts=100, launcher=False).setup()
    try:
        gang.start_all()
        gang.wait_all_ready(READY)
    except BaseException:
        gang.close()
        raise
    return gang


def one_restart(gang: Gang, faulty: int) -> float:
    """Seconds from the fatal line to every watcher's exit 88; then restart the gang."""
    began = time.monotonic()
    append(gang.members[faulty].paths.log, NCCL_TIMEOUT + "\n")
    codes = gang.wait_all_exit(60)
    took = time.monotonic() - began
    if codes != [88] * gang.size:
        raise SystemExit(f"exit codes {codes}\n{gang.describe()}")
    for member in gang.members:
        gang.restart(member)
    gang.wait_all_ready(READY)
    return took


def latency(size: int, runs: int) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="pwg") as base, ThreadedFakeApi() as api:
        gang = started_gang(Path(base), api, size, "jobset")
        try:
            return [one_restart(gang, random.randrange(size)) for _ in range(runs)]
        finally:
            gang.close()


def requests(size: int, mode: str) -> Counter[str]:
    """The requests of one gang restart, as the fake server counted them."""
    with tempfile.TemporaryDirectory(prefix="pwg") as base, ThreadedFakeApi() as api:
        gang = started_gang(Path(base), api, size, mode)
        try:
            before = api.api.counts()
            one_restart(gang, size // 2)
            cost = api.api.counts() - before
            if api.api.errors:
                raise SystemExit(f"schema errors: {api.api.errors}")
            return cost
        finally:
            gang.close()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="one tiny run: it works")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args()
    # a watcher exiting 88 mid-request leaves the fake server a closed socket to write to
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    if args.smoke:
        latency(3, 1)
        print("ok  gang restart, jobset mode, 3 watchers: every one exited 88, barrier lifted")
        for mode in ("jobset", "lease"):
            cost = requests(3, mode)
            verdict = "within" if cost.total() <= 3 * 3 + 10 else "NOT within"
            print(f"ok  gang restart, {mode} mode, 3 watchers: requests {verdict} 3N + 10")
        return
    times = latency(args.size, args.runs)
    median, p99 = statistics.median(times), percentile(times, 0.99)
    print(f"fault -> every watcher's exit 88, N={args.size}, {len(times)} runs: "
          f"median {median:.2f} s, p99 {p99:.2f} s, max {max(times):.2f} s "
          f"(goal <= 2 s median, <= 5 s p99)")  # fmt: skip
    print("| mode | N | requests per gang restart | 3N + 10 | by route |")
    print("|---|---|---|---|---|")
    for mode in ("jobset", "lease"):
        for size in (8, 16, 32):
            cost = requests(size, mode)
            routes = ", ".join(f"{route} {count}" for route, count in sorted(cost.items()))
            print(f"| {mode} | {size} | {cost.total()} | {3 * size + 10} | {routes} |")


if __name__ == "__main__":
    main()
