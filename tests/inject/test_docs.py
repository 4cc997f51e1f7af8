"""docs/inject.md names only options that exist, and the kinds inject handles."""

import re
from pathlib import Path

from watcher.cli import _parser
from watcher.inject.kinds import KINDS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "inject.md").read_text("utf-8")
RECIPE_OPTIONS = {"--out"}


def _options(command: str) -> set[str]:
    parser = _parser()
    (commands,) = [a for a in parser._actions if a.dest == "command"]
    sub = commands.choices[command]  # type: ignore[index]
    return {flag for action in sub._actions for flag in action.option_strings}


def test_every_option_in_the_doc_exists() -> None:
    known = _options("inject") | _options("webhook") | _options("check") | RECIPE_OPTIONS
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", DOC))
    assert named - known == set()
    assert {"--uninject", "--container", "--gpu", "--api", "--config-map"} <= named


def test_every_kind_inject_handles_is_in_the_doc() -> None:
    for kind, _ in KINDS:
        assert kind in DOC, kind
