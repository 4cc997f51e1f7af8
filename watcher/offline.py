"""The offline commands: `rules` lists the effective rules, `replay` runs them over files.

`replay --kind log` (the default) runs the rules over log files; the GPU kinds
(`nvidia-smi`, `dcgm-metrics`, `dcgmi-health`) read each file as one poll of that tool
and classify it as the GPU monitor would (watcher/gpu/replay.py).

Both read the same configuration as the watcher but need no state directory or log
paths. `replay` exits like grep: 0 when nothing fatal matched, 1 when something did,
2 on bad input (configuration or unreadable files).
"""

import argparse
import json
import sys

from watcher import exitcodes
from watcher.config.load import Config, ConfigError, load_config
from watcher.replay import Replayer, action_for, write_hits

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
    actions = config.settings.actions
    if fmt == "json":
        records = [
            {**rule.summary(), "action": action_for(rule, actions).value} for rule in config.rules
        ]
        print(json.dumps(records, indent=2))
        return exitcodes.CLEAN
    for rule in config.rules:
        origin = rule.pack or "yours"
        threshold = f", {rule.count} within {rule.window:g}s" if rule.count > 1 else ""
        print(
            f"{rule.reason} ({origin}): {rule.severity.value}, {rule.fault_class.value} -> "
            f"{action_for(rule, actions).value}{threshold}\n    {rule.description}"
        )
    return exitcodes.CLEAN


def _replay(config: Config, files: list[str], fmt: str) -> int:
    unreadable = [path for path in files if not _readable(path)]
    if unreadable:
        for path in unreadable:
            print(f"pod-watcher: cannot read {path}", file=sys.stderr)
        return exitcodes.CONFIG_ERROR
    settings = config.settings
    replayer = Replayer(
        config.rules,
        settings.actions,
        max_line=settings.max_line_bytes,
        chunk=settings.read_chunk_bytes,
    )
    fatal = 0
    for path in files:
        try:
            fatal += write_hits(replayer.replay(path), fmt, sys.stdout)[1]
        except OSError as exc:
            print(f"pod-watcher: {path}: {exc}", file=sys.stderr)
            return exitcodes.CONFIG_ERROR
    return FOUND_FATAL if fatal else exitcodes.CLEAN


def _replay_gpu(config: Config, files: list[str], fmt: str, kind: str) -> int:
    """Each file is one poll of a GPU tool (see watcher/gpu/replay.py)."""
    from watcher.gpu.replay import UnreadableOutput, replay_gpu

    unreadable = [path for path in files if not _readable(path)]
    for path in unreadable:
        print(f"pod-watcher: cannot read {path}", file=sys.stderr)
    if unreadable:
        return exitcodes.CONFIG_ERROR
    fatal = 0
    for path in files:
        try:
            hits = replay_gpu(path, kind, config.settings.actions)
        except (OSError, UnreadableOutput) as exc:
            print(f"pod-watcher: {path}: {exc}", file=sys.stderr)
            return exitcodes.CONFIG_ERROR
        fatal += write_hits(hits, fmt, sys.stdout)[1]
    return FOUND_FATAL if fatal else exitcodes.CLEAN


def _readable(path: str) -> bool:
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False
