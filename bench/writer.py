"""`python -m bench.writer LOG RATE WRITES_PER_S SECONDS [cri]`: append benign log at a fixed rate.

Generates the whole payload first (seeded, whole lines, no fatal line), prints `go`,
then writes one batch every 1/WRITES_PER_S seconds on an O_APPEND descriptor, on an
absolute schedule, and prints the number of bytes written. With `cri`, every line is in
the kubelet's CRI framing, stamped when the payload was made (node-problem-detector
drops lines without a stamp, and older than its lookback).
"""

import os
import random
import sys
import time

from bench.corpus import benign_lines, cri_prefix


def batches(rate: int, writes_per_s: int, seconds: float, prefix: bytes = b"") -> list[bytes]:
    per_write = rate // writes_per_s
    lines = benign_lines(random.Random(1))
    out = []
    for _ in range(round(writes_per_s * seconds)):
        batch: list[bytes] = []
        size = 0
        while size < per_write:
            line = prefix + next(lines).encode("utf-8") + b"\n"
            batch.append(line)
            size += len(line)
        out.append(b"".join(batch))
    return out


def main(argv: list[str]) -> int:
    path, rate, writes_per_s, seconds = argv[0], int(argv[1]), int(argv[2]), float(argv[3])
    prefix = cri_prefix(time.time()) if argv[4:] == ["cri"] else b""
    payload = batches(rate, writes_per_s, seconds, prefix)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    print("go", flush=True)
    written = 0
    start = time.perf_counter()
    try:
        for index, batch in enumerate(payload):
            delay = start + index / writes_per_s - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            written += os.write(fd, batch)
    finally:
        os.close(fd)
    print(written, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
