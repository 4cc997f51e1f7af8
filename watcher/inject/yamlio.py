"""Manifest streams in and out: several YAML documents, block style, keys in their order.

Comments do not survive (as with `linkerd inject` and `istioctl kube-inject`); everything
else does, and a document read back from the output is written out the same again.
"""

from collections.abc import Iterable
from typing import Any

import yaml

from watcher.inject.pieces import InjectError, Obj


class _Dumper(yaml.SafeDumper):
    """Lists indented under their key, as in the manifests; multi-line strings as `|`."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def load(text: str, source: str) -> list[Obj]:
    """The non-empty documents of ``text``; each must be a mapping."""
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise InjectError(f"{source}: not valid YAML: {exc}") from None
    for index, document in enumerate(documents):
        if not isinstance(document, dict):
            raise InjectError(f"{source}: document {index + 1} is not a mapping")
    return documents


def dump(documents: Iterable[Any]) -> str:
    return yaml.dump_all(
        documents, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100,
        explicit_start=False,
    )  # fmt: skip
