"""`pod-watcher run | check | rules | replay | inject | webhook | version`: the only place
that exits."""

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from watcher import __version__, exitcodes
from watcher.actions.termination import LIMIT, truncate_utf8
from watcher.config.load import Config, ConfigError, load_config
from watcher.config.preflight import preflight
from watcher.inject.command import add_parser as add_inject_parser
from watcher.webhook.command import add_parser as add_webhook_parser

log = logging.getLogger("watcher")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `pod-watcher` script and `python -m watcher`."""
    args = _parser().parse_args(argv)
    handler = getattr(args, "handler", None)  # inject, webhook
    code = int(handler(args)) if handler else _dispatch(args)
    if (args.command or "run") == "run":
        _exit_now(code)
    sys.exit(code)


EXIT_SLACK = 0.08
"""Seconds between the end of the last words and the process exit, at most."""
FLUSH_LIMIT = 1.0
"""Seconds the log streams get to flush on the way out, at most."""


class ExitGate:
    """Once an exit code is decided, the process is gone within ``slack`` seconds, whatever
    still runs: a stalled stdout, a stuck thread, an API client that will not close."""

    def __init__(self, slack: float) -> None:
        self._slack = slack

    def arm(self, code: int) -> None:
        timer = threading.Timer(self._slack, os._exit, args=(code,))
        timer.daemon = True
        timer.start()


def _exit_now(code: int) -> None:
    """Exit without the interpreter's teardown of modules and its final garbage collection
    (measured 56 ms of the 78 ms from fatal line to exit). Everything worth keeping was
    fsynced by the last words; the log streams are flushed here, within FLUSH_LIMIT."""
    ExitGate(FLUSH_LIMIT).arm(code)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pod-watcher",
        description="Watch a workload's logs; exit with the restart code on a fatal fault. "
        "Configured with WATCHER_* environment variables (see README).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", help="watch until a fatal fault or SIGTERM (the default)")
    check = commands.add_parser(
        "check",
        help="validate the configuration and print it as JSON; with --pod, check manifests",
    )
    check.add_argument(
        "--pod",
        nargs="+",
        metavar="FILE",
        type=Path,
        help="check the Pod specs in these manifests for the traps of in-place restarts "
        "instead (exit 1 when one has a problem)",
    )
    check.add_argument("--container", default="pod-watcher", help="the watcher's container")
    rules = commands.add_parser("rules", help="list the effective rules")
    rules.add_argument("--format", choices=["text", "json"], default="text")
    replay = commands.add_parser(
        "replay",
        help="run the effective rules over files offline; exit 1 if anything fatal matched",
    )
    replay.add_argument("--format", choices=["text", "json"], default="text")
    replay.add_argument(
        "--kind",
        choices=["log", "nvidia-smi", "dcgm-metrics", "dcgmi-health"],
        default="log",
        help="what the files hold: logs, or one poll of a GPU tool per file",
    )
    replay.add_argument("files", nargs="+", metavar="FILE")
    add_inject_parser(commands)
    add_webhook_parser(commands)
    commands.add_parser("version", help="print the version")
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    command = args.command or "run"
    if command == "version":
        print(f"pod-watcher {__version__}")
        return exitcodes.CLEAN
    if command == "check" and args.pod:
        return _check_manifests(args.pod, args.container)
    if command in ("rules", "replay"):
        from watcher.offline import offline_command

        return offline_command(args)
    try:
        config = load_config()
        problems = preflight(config.settings)
        if problems:
            raise ConfigError(problems)
    except ConfigError as exc:
        return _config_error(exc, leave_message=command == "run")
    if command == "check":
        print(json.dumps(_effective(config), indent=2, default=str))
        return exitcodes.CLEAN
    return _run(config)


def _check_manifests(files: list[Path], container: str) -> int:
    from watcher.kube.manifest_check import ManifestError, check_files

    try:
        reports = check_files(files, container)
    except ManifestError as exc:
        print(f"pod-watcher: {exc}", file=sys.stderr)
        return exitcodes.CONFIG_ERROR
    for report in reports:
        for problem in report.problems:
            print(f"{report.where}: {problem.reason}: {problem.message}")
    bad = sum(1 for report in reports if report.problems)
    if not reports:
        print("no Pod spec found", file=sys.stderr)
        return exitcodes.CONFIG_ERROR
    print(f"{len(reports) - bad} of {len(reports)} Pod specs are wired for in-place restarts")
    return exitcodes.INTERNAL_ERROR if bad else exitcodes.CLEAN


def _config_error(exc: ConfigError, *, leave_message: bool) -> int:
    lines = [f"pod-watcher: configuration error: {problem}" for problem in exc.problems]
    print("\n".join(lines), file=sys.stderr)
    if leave_message:
        _leave_termination_message("\n".join(lines) + "\n")
    return exitcodes.CONFIG_ERROR


def _leave_termination_message(message: str) -> None:
    """Best effort: show the configuration error in `kubectl describe pod` too.

    Only for `run`: `check` on a workstation must not write to /dev/termination-log.
    """
    path = os.environ.get("WATCHER_TERMINATION_LOG", "/dev/termination-log").strip()
    if path:
        with contextlib.suppress(OSError):
            Path(path).write_text(truncate_utf8(message, LIMIT), "utf-8")


def _effective(config: Config) -> dict[str, object]:
    settings = config.settings.model_dump(mode="json", exclude={"rules"})
    return {
        "settings": settings,
        "rules": [rule.summary() for rule in config.rules],
        "warnings": list(config.warnings),
    }


def _run(config: Config) -> int:
    from watcher.reporting.logs import setup_logging

    setup_logging(config.settings.log_format, config.settings.log_level)
    for warning in config.warnings:
        log.warning(warning)
    try:
        return asyncio.run(_serve(config))
    except ConfigError as exc:
        return _config_error(exc, leave_message=True)
    except Exception:
        log.exception("internal error: exiting 1")
        return exitcodes.INTERNAL_ERROR


async def _serve(config: Config) -> int:
    from watcher.clock import SystemClock
    from watcher.service import serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _on_signal, stop, signum)
    code = await serve(config, stop, SystemClock(), ExitGate(EXIT_SLACK).arm)
    if code != exitcodes.CLEAN:
        # Exit from inside the loop: asyncio.run's teardown waits for every task and
        # for the default executor's threads, without a deadline.
        _exit_now(code)
    return code


def _on_signal(stop: asyncio.Event, signum: int) -> None:
    if stop.is_set():  # a second signal: stop waiting for anything
        os._exit(exitcodes.CLEAN)
    log.info("received %s", signal.Signals(signum).name)
    stop.set()
