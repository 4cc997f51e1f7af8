"""The offline commands: `rules` lists the effective rules, `replay` runs them over files.

`replay --kind log` (the default) runs the rules over log files; the GPU kinds
(`nvidia-smi`, `dcgm-metrics`, `dcgmi-health`) read each file as one poll of that tool
and classify it as the GPU monitor would (watcher/gpu/replay.py).

Both read the same configuration as the watcher but need no state directory or log
paths. `replay` exits like grep: 0 when nothing fatal matched, 1 when something did,
2 on bad input (configuration or unreadable files, each named with the reason). When
nothing at all matched it says so in one line on stderr, with what it read.
"""

import argparse
import json
import os
import stat
import sys

from watcher import exitcodes
from watcher.config.load import Config, ConfigError, load_config
from watcher.policy.rules import configured_action
from watcher.replay import Replayer, write_hits
from watcher.rules.corpus_stats import real_logs

FOUND_FATAL = 1
"""`replay` found at least one fatal match (grep's convention for 'found')."""


def offline_command(args: argparse.Namespace) -> int:
    try:
        config = load_config(to_watch=False)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"pod-watcher: configuration error: {problem}", file=sys.stderr)
        return exitcodes.CONFIG_ERROR
    try:
        if args.command == "rules":
            return _rules(config, args.format)
        if getattr(args, "kind", "log") != "log":
            return _replay_gpu(config, args.files, args.format, args.kind)
        return _replay(config, args.files, args.format)
    except BrokenPipeError:  # `pod-watcher replay ... | head`
        sys.stderr.close()
        return exitcodes.CLEAN


def _rules(config: Config, fmt: str) -> int:
    """The effective rules, each with what it leads to and, for a built-in one, how it
    fared on the corpus of real logs (watcher/rules/corpus_stats.py)."""
    actions = config.settings.actions
    if fmt == "json":
        records = []
        for rule in config.rules:
            stats = real_logs(rule)
            records.append(
                {
                    **rule.summary(),
                    "action": configured_action(rule, actions, rule.action).value,
                    "real_logs": None if stats is None else stats.record(),
                }
            )
        print(json.dumps(records, indent=2))
        return exitcodes.CLEAN
    for rule in config.rules:
        origin = rule.pack or "yours"
        threshold = f", {rule.count} within {rule.window:g}s" if rule.count > 1 else ""
        stats = real_logs(rule)
        print(
            f"{rule.reason} ({origin}): {rule.severity.value}, {rule.fault_class.value} -> "
            f"{configured_action(rule, actions, rule.action).value}{threshold}\n"
            f"    {rule.description}" + ("" if stats is None else f"\n    {stats.text()}")
        )
    return exitcodes.CLEAN


def _replay(config: Config, files: list[str], fmt: str) -> int:
    if _refuse_unreadable(files):
        return exitcodes.CONFIG_ERROR
    settings = config.settings
    replayer = Replayer(
        config.rules,
        settings.actions,
        max_line=settings.max_line_bytes,
        chunk=settings.read_chunk_bytes,
    )
    total = fatal = 0
    for path in files:
        try:
            found, fatal_found = write_hits(replayer.replay(path), fmt, sys.stdout)
        except OSError as exc:
            print(f"pod-watcher: cannot read {path}: {_why(exc)}", file=sys.stderr)
            return exitcodes.CONFIG_ERROR
        total, fatal = total + found, fatal + fatal_found
    if not total:
        lines, rules = _count(replayer.lines_read, "line"), _count(len(config.rules), "rule")
        _nothing_found(files, f"{lines}, {rules}")
    return FOUND_FATAL if fatal else exitcodes.CLEAN


def _replay_gpu(config: Config, files: list[str], fmt: str, kind: str) -> int:
    """Each file is one poll of a GPU tool (see watcher/gpu/replay.py)."""
    from watcher.gpu.replay import UnreadableOutput, replay_gpu

    if _refuse_unreadable(files):
        return exitcodes.CONFIG_ERROR
    total = fatal = 0
    for path in files:
        try:
            hits = replay_gpu(path, kind, config.settings.actions)
        except (OSError, UnreadableOutput) as exc:
            print(f"pod-watcher: {path}: {exc}", file=sys.stderr)
            return exitcodes.CONFIG_ERROR
        found, fatal_found = write_hits(hits, fmt, sys.stdout)
        total, fatal = total + found, fatal + fatal_found
    if not total:
        _nothing_found(files, f"read as {kind} output")
    return FOUND_FATAL if fatal else exitcodes.CLEAN


def _nothing_found(files: list[str], how: str) -> None:
    """The one line that says a replay ran and found nothing (on stderr, like every
    message, so that the output stays the findings alone)."""
    print(f"pod-watcher: nothing found in {_count(len(files), 'file')} ({how})", file=sys.stderr)


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def _refuse_unreadable(files: list[str]) -> bool:
    """Print why each file that cannot be replayed cannot be; whether there was one."""
    refused = False
    for path in files:
        why = _unreadable(path)
        if why is not None:
            print(f"pod-watcher: cannot read {path}: {why}", file=sys.stderr)
            refused = True
    return refused


def _unreadable(path: str) -> str | None:
    """Why ``path`` cannot be replayed (missing, a directory, not a regular file, no
    permission), or None. A FIFO is refused, not opened: reading it would wait."""
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            return "it is a directory"
        if not stat.S_ISREG(mode):
            return "not a regular file"
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
    except OSError as exc:
        return _why(exc)
    return None


def _why(exc: OSError) -> str:
    """An OSError's reason without the path the message already names."""
    return exc.strerror or str(exc)
