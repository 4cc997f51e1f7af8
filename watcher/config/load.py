"""Build the effective configuration from the environment and the optional config file.

Every problem becomes a line of a `ConfigError` that names the environment variable or
the file key at fault, so the CLI can print them all and exit 2.
"""

import difflib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_settings import SettingsError

from watcher.config.settings import WatcherSettings
from watcher.rules.packs import RuleSetError, effective_rules
from watcher.rules.rule import Rule

PREFIX = "WATCHER_"
NESTED = "__"


class ConfigError(Exception):
    """The configuration cannot be used. Each message names what is wrong and where."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Config:
    """Validated settings plus what was derived from them."""

    settings: WatcherSettings
    rules: tuple[Rule, ...]
    warnings: tuple[str, ...] = field(default=())


def load_config(environ: Mapping[str, str] | None = None, *, to_watch: bool = True) -> Config:
    """Read the environment (and `WATCHER_CONFIG`), validate everything, or raise ConfigError.

    pydantic-settings reads `os.environ` itself; ``environ`` defaults to it and is used
    for the config file name and for the names in error messages. ``to_watch=False``
    (offline commands: replay, rules) does not ask for what only watching needs.
    """
    environ = os.environ if environ is None else environ
    file_path, file_data = _read_file(environ.get(f"{PREFIX}CONFIG", "").strip())
    where = _Where(environ, file_path, file_data)
    try:
        settings = WatcherSettings(**file_data)
    except ValidationError as exc:
        raise ConfigError([where.describe(err) for err in exc.errors()]) from None
    except SettingsError as exc:
        raise ConfigError([where.describe_settings_error(exc)]) from None
    problems = _watch_checks(settings, where) if to_watch else []
    rules, rule_problems = _rules(settings, where)
    problems += rule_problems
    if problems:
        raise ConfigError(problems)
    warnings = _unknown_variables(environ)
    timers = (settings.silence_timeout, settings.progress_timeout, settings.heartbeat_timeout)
    if settings.startup_grace is not None and not any(timers):
        warnings.append(
            "WATCHER_STARTUP_GRACE does nothing without WATCHER_SILENCE_TIMEOUT, "
            "WATCHER_PROGRESS_TIMEOUT or WATCHER_HEARTBEAT_TIMEOUT"
        )
    if not rules:
        warnings.append("no log rules are active (WATCHER_RULE_PACKS=none and no WATCHER_RULES)")
    return Config(settings=settings, rules=rules, warnings=tuple(warnings))


def env_name(loc: tuple[int | str, ...]) -> str:
    """`("actions", "hardware")` -> `WATCHER_ACTIONS__HARDWARE`."""
    return PREFIX + NESTED.join(str(part).upper() for part in loc)


def _read_file(name: str) -> tuple[Path | None, dict[str, Any]]:
    if not name:
        return None, {}
    path = Path(name)
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"WATCHER_CONFIG={name}: cannot read it: {exc}"]) from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError([f"WATCHER_CONFIG={name}: not valid {_kind(path)}: {exc}"]) from None
    except (RecursionError, ValueError) as exc:  # nested too deeply; a 5,000-digit integer
        raise ConfigError([f"WATCHER_CONFIG={name}: cannot be read: {exc}"[:500]]) from None
    if data is None:
        return path, {}
    if not isinstance(data, dict):
        raise ConfigError([f"WATCHER_CONFIG={name}: the top level must be a mapping of settings"])
    if "config" in data:
        raise ConfigError([f"{name}: key 'config': a config file cannot name another one"])
    return path, data


def _kind(path: Path) -> str:
    return "JSON" if path.suffix == ".json" else "YAML"


class _Where:
    """Says which variable or file key a validation error is about."""

    def __init__(
        self, environ: Mapping[str, str], file_path: Path | None, file_data: dict[str, Any]
    ) -> None:
        self.environ = {key.upper(): value for key, value in environ.items()}
        self.file_path = file_path
        self.file_data = file_data

    def describe(self, error: Mapping[str, Any]) -> str:
        loc: tuple[int | str, ...] = tuple(error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        return f"{self.origin(loc)}: {message}"

    def origin(self, loc: tuple[int | str, ...]) -> str:
        top = str(loc[0]) if loc else ""
        for depth in range(len(loc), 0, -1):
            name = env_name(loc[:depth])
            if name in self.environ:
                inside = _dotted(loc[depth:], None) if depth < len(loc) else ""
                where = f" (at {inside.lstrip('.')})" if inside else ""
                return f"{name}={_short(self.environ[name])}{where}"
        if self.file_path is not None and top in self.file_data:
            return f"{self.file_path}: key {_dotted(loc, self.file_data)}"
        return f"{env_name(loc[:1]) if loc else 'configuration'}"

    def describe_settings_error(self, exc: SettingsError) -> str:
        found = re.search(r'field "([^"]+)"', str(exc))
        name = env_name((found.group(1),)) if found else "a WATCHER_ variable"
        return f"{name}: not valid JSON ({exc.__cause__ or exc})"


def _dotted(loc: tuple[int | str, ...], data: Any) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            reason = data[part].get("reason") if _indexable(data, part) else None
            text += f" (reason {reason})" if isinstance(reason, str) else ""
            data = data[part] if _indexable(data, part) else None
        else:
            text += f".{part}" if text else part
            data = data.get(part) if isinstance(data, dict) else None
    return text


def _short(value: str, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def _indexable(data: Any, index: int) -> bool:
    return isinstance(data, list) and 0 <= index < len(data) and isinstance(data[index], dict)


def _watch_checks(settings: WatcherSettings, where: _Where) -> list[str]:
    problems = []
    if settings.state_dir is None:
        problems.append(
            "WATCHER_STATE_DIR is required: a directory that survives in-place restarts "
            "(an emptyDir) for the ledger that enforces the restart budget"
        )
    if not (settings.log_paths or settings.probes or settings.heartbeat_file):
        problems.append(
            "nothing to watch: set WATCHER_LOG_PATHS (comma-separated globs of log files), "
            "WATCHER_PROBES or WATCHER_HEARTBEAT_FILE"
        )
    for name in ("silence_timeout", "progress_pattern"):
        if getattr(settings, name) is not None and not settings.log_paths:
            problems.append(f"{where.origin((name,))}: needs WATCHER_LOG_PATHS to read logs from")
    return problems


def _rules(settings: WatcherSettings, where: _Where) -> tuple[tuple[Rule, ...], list[str]]:
    try:
        rules = effective_rules(
            settings.rule_packs, settings.rules, settings.disable_rules, settings.extra_excludes
        )
    except RuleSetError as exc:
        return (), [f"{where.origin((exc.key,))}: {exc}"]
    return rules, []


def _unknown_variables(environ: Mapping[str, str]) -> list[str]:
    known = {env_name((name,)) for name in WatcherSettings.model_fields}
    warnings = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(PREFIX) or upper.split(NESTED)[0] in known:
            continue
        close = difflib.get_close_matches(upper, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        warnings.append(f"unknown variable {name} is ignored{hint}")
    return warnings
