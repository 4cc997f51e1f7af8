"""Build the effective configuration from the environment and the optional config file.

Every problem becomes a line of a `ConfigError` that names the environment variable or
the file key at fault, so the CLI can print them all and exit 2.
"""

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_origin

import yaml
from pydantic import ValidationError
from pydantic_settings import SettingsError

from watcher.config.gang import gang_problems
from watcher.config.hints import did_you_mean, keys_at, similar, typo_of
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
    typos, warnings = _unknown_variables(environ)
    file_path, file_data = _read_file(environ.get(f"{PREFIX}CONFIG", "").strip())
    where = _Where(environ, file_path, file_data)
    try:
        settings = WatcherSettings(**file_data)
    except ValidationError as exc:
        raise ConfigError(typos + [where.describe(err) for err in exc.errors()]) from None
    except SettingsError as exc:
        raise ConfigError([*typos, where.describe_settings_error(exc)]) from None
    problems = typos + (_watch_checks(settings, where) if to_watch else [])
    if to_watch:
        problems += gang_problems(settings, settings.kubernetes, settings.pod_name, environ)
    rules, rule_problems = _rules(settings, where)
    problems += rule_problems
    if problems:
        raise ConfigError(problems)
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
        if loc[-1:] == ("[key]",):  # the key itself is wrong, e.g. actions.hardwar
            loc = loc[:-1]
        origin = self.origin(loc)
        return f"{origin}: {_message(error, loc, in_env=origin.startswith(PREFIX))}"

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


def _message(error: Mapping[str, Any], loc: tuple[int | str, ...], *, in_env: bool) -> str:
    """pydantic's message, or a clearer one for an unknown key and a list not given as one."""
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden" and loc:
        suggestion = similar(str(loc[-1]), keys_at(WatcherSettings, loc[:-1]))
        return "unknown key" + did_you_mean(suggestion)
    if kind == "enum" and error["loc"][-1:] == ("[key]",):
        expected = str(error.get("ctx", {}).get("expected", ""))
        suggestion = similar(str(value), re.findall(r"'([^']*)'", expected))
        return f"unknown key {value!r}{did_you_mean(suggestion)}: the keys are {expected}"
    if kind in ("tuple_type", "list_type") and isinstance(value, dict):
        how = "[{...}]" if in_env else "in YAML, start it with '- '; in JSON, [{...}]"
        return f"must be a list, not a single mapping: even one goes in a list ({how})"
    if kind in ("tuple_type", "list_type") and isinstance(value, str):
        return "must be a list, not a single string: even one goes in a list (['...'])"
    return str(error["msg"]).removeprefix("Value error, ")


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
    logs = settings.log_paths or settings.launcher_dir is not None
    gpu_backend = settings.gpu not in ("auto", "off")
    if not (logs or settings.probes or settings.heartbeat_file or gpu_backend):
        problems.append(
            "nothing to watch: set WATCHER_LOG_PATHS (comma-separated globs of log files), "
            "WATCHER_LAUNCHER_DIR (the workload runs through the launcher), "
            "WATCHER_PROBES, WATCHER_HEARTBEAT_FILE or a GPU backend (WATCHER_GPU=nvml, "
            "nvidia-smi or dcgm)"
        )
    for name in ("silence_timeout", "progress_pattern"):
        if getattr(settings, name) is not None and not logs:
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


def _unknown_variables(environ: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """WATCHER_ variables that name no setting: a typo of a setting's name is an error
    (else a default silently stays in place), any other name a warning (see `hints`)."""
    typos, warnings = [], []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(PREFIX):
            continue
        top, _, nested = upper.removeprefix(PREFIX).partition(NESTED)
        if top.lower() in WatcherSettings.model_fields:
            continue
        meant = _meant(top, nested)
        if meant is None:
            warnings.append(f"unknown variable {name} is ignored: pod-watcher has no such setting")
        else:
            typos.append(
                f"{name}: no such setting (did you mean {meant}?); a misspelt setting is "
                "refused so that its default does not silently stay in place"
            )
    return typos, warnings


def _meant(top: str, nested: str) -> str | None:
    """The variable ``WATCHER_<top>[__<nested>]`` was meant to be, if it is a typo."""
    fields = WatcherSettings.model_fields
    for name in (n for n, f in fields.items() if get_origin(f.annotation) is dict):
        if not nested and top.startswith(f"{name.upper()}_"):  # WATCHER_ACTIONS_HARDWARE
            return f"{PREFIX}{name.upper()}{NESTED}{top[len(name) + 1 :]}"
    meant = typo_of(top, [name.upper() for name in fields])
    if meant is None:
        return None
    return PREFIX + meant + (NESTED + nested if nested else "")
