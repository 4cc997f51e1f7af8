"""The JSON Patch (RFC 6902) that turns one object into another, for an AdmissionResponse."""

from typing import Any

Op = dict[str, Any]


def pointer(path: str, key: str | int) -> str:
    """``path`` extended by one JSON Pointer token (RFC 6901: ~ and / escaped)."""
    return f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"


def diff(old: Any, new: Any, path: str = "") -> list[Op]:
    """Operations turning ``old`` into ``new``: mappings key by key (a named one, such as a
    container, only into one of the same name), lists of the same length item by item,
    anything else replaced whole (a list that grew or shrank included)."""
    if isinstance(old, dict) and isinstance(new, dict) and old.get("name") == new.get("name"):
        ops: list[Op] = [{"op": "remove", "path": pointer(path, k)} for k in old if k not in new]
        for key, value in new.items():
            if key in old:
                ops += diff(old[key], value, pointer(path, key))
            else:
                ops.append({"op": "add", "path": pointer(path, key), "value": value})
        return ops
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [op for i, (a, b) in enumerate(zip(old, new, strict=True)) for op in
                diff(a, b, pointer(path, i))]  # fmt: skip
    if type(old) is type(new) and old == new:
        return []
    return [{"op": "replace", "path": path, "value": new}]
