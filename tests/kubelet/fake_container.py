"""A container for the kubelet model's own tests: serves, records, waits, exits on cue.

    python fake_container.py [--serve PORT] [--record FILE] [--exit-when FILE CODE]
        [--exit-after SECONDS CODE] [--on-sigterm CODE|ignore]

A cue file of --exit-when is used up: each one makes one exit.
"""

import argparse
import http.server
import os
import signal
import threading
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", type=int)
    parser.add_argument("--record")
    parser.add_argument("--exit-when", nargs=2, metavar=("FILE", "CODE"))
    parser.add_argument("--exit-after", nargs=2, type=float, metavar=("SECONDS", "CODE"))
    parser.add_argument("--on-sigterm", default="143")
    args = parser.parse_args()
    if args.on_sigterm == "ignore":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        code = int(args.on_sigterm)
        signal.signal(signal.SIGTERM, lambda *_: os._exit(code))
    if args.serve:
        server = http.server.HTTPServer(("127.0.0.1", args.serve), _Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    if args.record:  # last: a recorded start has its signal handling in place
        with open(args.record, "a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()}\n")
    deadline = time.monotonic() + args.exit_after[0] if args.exit_after else None
    while True:
        if args.exit_when and _take(args.exit_when[0]):
            os._exit(int(args.exit_when[1]))
        if deadline is not None and time.monotonic() >= deadline:
            os._exit(int(args.exit_after[1]))
        time.sleep(0.01)


def _take(cue: str) -> bool:
    """Whether the cue file is there; it is used up (each cue makes one exit)."""
    try:
        os.unlink(cue)
    except FileNotFoundError:
        return False
    return True


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    main()
