"""Values that validate must work: a fuzz of every WATCHER_ variable.

Each value is either refused at start (exit 2, with a message naming the variable) or
runs: the watcher starts, watches and stops cleanly on request. Never an exit 1 (an
exception), never an exit 88 (a restart nobody asked for). The issue's own cases run
against the real `pod-watcher run` process; the fuzz runs the same code in-process,
which is what lets hypothesis try hundreds of values.
"""

import asyncio
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from tests.e2e.process import run_command
from tests.e2e.workload import Paths
from watcher import exitcodes
from watcher.clock import SystemClock
from watcher.config.load import ConfigError, env_name, load_config
from watcher.config.preflight import preflight
from watcher.config.settings import WatcherSettings
from watcher.service import serve

PREFIX = "pod-watcher: configuration error: "
RUN_FOR = 0.2
"""Seconds a fuzzed configuration that validated runs before it is asked to stop."""
EXAMPLES = 8
"""Values tried per variable (about 380 in all, shaped by the variable's type)."""
VARIABLES = sorted(
    [env_name((name,)) for name in WatcherSettings.model_fields if name not in ("config",)]
    + ["WATCHER_ACTIONS__HARDWARE", "WATCHER_ACTIONS__HANG"]
)
LONG = "a" * 5000
DEEP = "[" * 50_000 + "]" * 50_000


def probe(**fields: object) -> str:
    return json.dumps([{"type": "http", "url": "http://127.0.0.1:9/healthz", **fields}])


ISSUE_VALUES = [
    ("WATCHER_HEARTBEAT_TIMEOUT", "1e-320"),
    ("WATCHER_POLL_INTERVAL", "1e-300"),
    ("WATCHER_FALLBACK_POLL_INTERVAL", "5e-324"),
    ("WATCHER_GPU_POLL_INTERVAL", "1e-9"),
    ("WATCHER_READ_CHUNK_BYTES", "9" * 20),
    ("WATCHER_MAX_LINE_BYTES", "9" * 5000),
    ("WATCHER_LOG_PATHS", "/logs/[z-a].log"),
    ("WATCHER_HTTP_HOST", LONG),
    ("WATCHER_PROBES", probe(headers={"X-Token": "a\r\nInjected: yes"})),
    ("WATCHER_PROBES", probe(url=f"http://{LONG}/healthz")),
    ("WATCHER_PROBES", probe(periodSeconds=1e-300, timeoutSeconds=1e-301)),
    ("WATCHER_TERMINATION_LOG", "/tmp/" + LONG),
    ("WATCHER_STATE_DIR", "/tmp/" + LONG),
    ("WATCHER_RULES", DEEP),
    ("WATCHER_RESTART_WINDOW", "nan"),
    ("WATCHER_LAST_WORDS_TIMEOUT", "inf"),
]


@pytest.mark.parametrize(("name", "value"), ISSUE_VALUES, ids=[v[0] for v in ISSUE_VALUES])
def test_the_issues_values_exit_2_naming_the_variable(paths: Paths, name: str, value: str) -> None:
    env = {**paths.env(WATCHER_SILENCE_TIMEOUT="60", WATCHER_HEARTBEAT_FILE=str(paths.root / "hb")),
           "WATCHER_HEARTBEAT_TIMEOUT": "60", name: value}  # fmt: skip
    result = run_command(["run"], env, cwd=paths.root)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert result.stderr.startswith(PREFIX + name), result.stderr[:500]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.json", '{"rules": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        ("deep.yaml", "rules: " + "[" * 10_000 + "]" * 10_000),
        ("digits.yaml", "max_restarts: " + "9" * 5000),
        ("nul.yaml", 'heartbeat_file: "/tmp/a\\0b"\nheartbeat_timeout: 5'),
    ],
)
def test_config_files_that_cannot_work_exit_2(paths: Paths, name: str, text: str) -> None:
    config = paths.root / name
    config.write_text(text, "utf-8")
    result = run_command(["run"], {**paths.env(), "WATCHER_CONFIG": str(config)}, cwd=paths.root)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert result.stderr.startswith(PREFIX), result.stderr[:500]
    assert name in result.stderr
    assert "Traceback" not in result.stderr


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
anything = st.one_of(
    st.sampled_from(
        [
            "0",
            "-1",
            "1",
            "0.05",
            "1e-320",
            "5e-324",
            "1e308",
            "1e999",
            "nan",
            "inf",
            "-inf",
            "9" * 5000,
            "",
            " ",
            "true",
            "off",
            "[z-a]",
            "/x/[",
            "a\r\nb",
            LONG,
            "/" + LONG,
            "../../etc",
            "::",
            "0.0.0.0",
            "localhost",
            DEEP,
            "http://" + LONG,
            "http://[::1",
            "{}",
            "[]",
            "null",
            '{"a": 1}',
            probe(headers={"A": "b\nc"}),
            probe(periodSeconds=0.0001),
        ]
    ),
    st.integers(min_value=-(10**6), max_value=10**20).map(str),
    st.floats().map(repr),
    st.text(st.characters(blacklist_characters="\x00", codec="utf-8"), max_size=40),
    json_values.map(json.dumps),
)
numbers = st.one_of(
    st.sampled_from(["1e-320", "5e-324", "1e-300", "1e-9", "0.001", "0", "1e20", "1e308"]),
    st.floats(min_value=1e-12, max_value=1e12).map(repr),
    st.integers(min_value=-5, max_value=10**20).map(str),
)
texts = st.one_of(
    st.sampled_from([LONG, "/tmp/" + LONG, "a\r\nb", "[z-a]", "/x/**/[!a-", "~", ".", "/"]),
    st.text(st.characters(blacklist_characters="\x00", codec="utf-8"), max_size=300),
)


def values_for(name: str) -> st.SearchStrategy[str]:
    """Values shaped like what the variable takes, and anything at all."""
    field = WatcherSettings.model_fields.get(name.removeprefix("WATCHER_").lower())
    shown = str(field.annotation) if field is not None else ""
    if shown in ("<class 'float'>", "<class 'int'>", "float | None", "int | None"):
        return numbers | anything
    if "str" in shown or "Path" in shown:
        return texts | anything
    return anything


fuzz_cases = st.sampled_from(VARIABLES).flatmap(
    lambda name: st.tuples(st.just(name), values_for(name))
)


@contextmanager
def environment(env: dict[str, str], cwd: Path) -> Iterator[None]:
    """os.environ as ``env`` plus what the test runner needs (pydantic-settings reads it),
    in the working directory ``cwd``."""
    saved, here = dict(os.environ), os.getcwd()
    os.environ.clear()
    os.environ.update({k: v for k, v in saved.items() if not k.upper().startswith("WATCHER_")})
    os.environ.update(env)
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(saved)


def sandboxed(name: str, value: str, sandbox: Path) -> str:
    """A state directory (the one place the watcher writes to while it runs) moved into
    ``sandbox``: the fuzz must never create files elsewhere."""
    if name != "WATCHER_STATE_DIR" or not value.strip():
        return value
    assume(".." not in value.split("/"))
    return f"{sandbox}/{value.strip().lstrip('/')}"


async def run_briefly(config_env: dict[str, str]) -> int:
    config = load_config(config_env)
    problems = preflight(config.settings)
    if problems:
        raise ConfigError(problems)
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(RUN_FOR, stop.set)
    async with asyncio.timeout(10.0):
        return await serve(config, stop, SystemClock())


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "sandbox" / "cwd").mkdir(parents=True)
    (root / "logs").mkdir()
    (root / "logs" / "train.log").write_text("step 1\n", "utf-8")
    return {
        "WATCHER_LOG_PATHS": str(root / "logs" / "*.log"),
        "WATCHER_STATE_DIR": str(root / "state"),
        "WATCHER_TERMINATION_LOG": str(root / "termination-log"),
        "WATCHER_HTTP_HOST": "127.0.0.1",
        "WATCHER_HTTP_PORT": "0",
        "WATCHER_GPU": "off",
        "WATCHER_KUBERNETES": "off",
        "WATCHER_LOG_GLOB_GRACE": "",
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", VARIABLES)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_value_is_refused_with_its_name_or_it_works(
    base: dict[str, str], name: str, data: st.DataObject
) -> None:
    sandbox = Path(base["WATCHER_STATE_DIR"]).parent / "sandbox" / "cwd"
    value = sandboxed(name, data.draw(values_for(name), label="value"), sandbox.parent)
    env = {**base, name: value}
    with environment(env, sandbox):
        try:
            code = asyncio.run(run_briefly(env))
        except ConfigError as exc:
            text = "\n".join(exc.problems)
            event("refused")
            assert text.strip(), "an empty configuration error"
            assert name in text or "nothing to watch" in text or "go together" in text, text[:500]
            return
    event("ran")
    assert code == exitcodes.CLEAN, f"{name}={value[:80]!r} ran and ended with {code}"
