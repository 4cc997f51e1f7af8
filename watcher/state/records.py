"""Read a JSON record back into a dataclass, refusing values of the wrong type.

State files outlive the process that wrote them and may be torn, hand-edited or written
by another version. A record is accepted only when every field it has is of the type the
dataclass declares; unknown fields are ignored (a newer version may have added them) and
missing fields take their defaults.
"""

import dataclasses
import math
import types
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")


class RecordError(ValueError):
    """A record that cannot be read back; the message says which field is wrong."""


def from_record(cls: type[T], record: object) -> T:
    """An instance of the dataclass ``cls`` from the JSON value ``record``."""
    if not isinstance(record, dict):
        raise RecordError(f"not an object but {_kind(record)}")
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if field.name not in record:
            continue
        value = record[field.name]
        hint = hints[field.name]
        if not conforms(value, hint):
            raise RecordError(f"{field.name} is {_kind(value)}, not {_name(hint)}")
        values[field.name] = _convert(value, hint)
    try:
        return cls(**values)
    except TypeError as exc:  # a required field is missing
        raise RecordError(str(exc)) from None


def conforms(value: object, hint: Any) -> bool:  # noqa: PLR0911 - one case per kind of hint
    """Whether the JSON value ``value`` fits the type ``hint``."""
    origin = get_origin(hint)
    if hint is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(conforms(value, arg) for arg in get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return number and math.isfinite(value)  # type: ignore[arg-type]
    if hint is str:
        return isinstance(value, str)
    if origin in (tuple, list):
        item = get_args(hint)[0] if get_args(hint) else Any
        return isinstance(value, list | tuple) and all(conforms(v, item) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict) and all(isinstance(key, str) for key in value)
    return isinstance(hint, type) and isinstance(value, hint)


def _convert(value: Any, hint: Any) -> Any:
    if get_origin(hint) is tuple or (
        get_origin(hint) in (Union, types.UnionType)
        and isinstance(value, list)
        and any(get_origin(arg) is tuple for arg in get_args(hint))
    ):
        return tuple(value)
    if hint is float:
        return float(value)
    return value


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value}"
    return {
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
