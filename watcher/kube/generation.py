"""The restart generation of a gang, held in one shared object (a Lease or a ConfigMap named
in the configuration), as the annotation `pod-watcher/restart-generation`.

`bump_generation` moves it from the generation a watcher knows to the next, unless a peer
already did: then it writes nothing, since two faults at once are one gang restart. In the
common case that is one PUT, with the resourceVersion the watch last saw as precondition;
on 409 Conflict it reads again and decides again, a bounded number of times.
"""

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from watcher.kube.client import ApiError
from watcher.kube.watch import Obj, ObjectRef, Transport, reason_of

GENERATION = "pod-watcher/restart-generation"
"""The annotation holding the restart generation on the shared Lease or ConfigMap."""


@dataclass(frozen=True)
class Bump:
    generation: int
    """The generation now (past + 1, or higher when peers moved it further)."""
    wrote: bool
    """Whether this call moved it (False: a peer did first: the same gang restart)."""


def generation_of(obj: Obj | None) -> int:
    """The generation in ``obj``'s annotation (0 without one); ApiError when it is not a count."""
    raw = ((obj or {}).get("metadata", {}).get("annotations") or {}).get(GENERATION, "0")
    if not str(raw).isdigit():
        raise ApiError(f"annotation {GENERATION} is {raw!r}, not a non-negative integer")
    return int(raw)


async def bump_generation(
    api_client: Any,
    ref: ObjectRef,
    past: int,
    *,
    latest: Obj | None = None,
    annotations: Mapping[str, str] | None = None,
    attempts: int = 4,
    api_timeout: float = 2.0,
) -> Bump:
    """Move the generation in ``ref`` from ``past`` to ``past + 1`` unless it already moved.

    ``latest`` is the object as last seen (from `ObjectWatch.latest`): the first write then
    needs no read. Each request is under ``api_timeout``; after ``attempts`` conflicts in a row,
    or any other refusal, ApiError. A missing object is created."""
    http = Transport(api_client, api_timeout)
    obj = latest
    for _ in range(attempts):
        if obj is None:
            obj = await _read(http, ref)
        current = generation_of(obj)
        if current > past:
            return Bump(current, wrote=False)
        status, body = await _write(http, ref, obj, past + 1, annotations or {})
        if status in (200, 201):
            return Bump(past + 1, wrote=True)
        if status != 409:
            raise ApiError(
                f"bump {ref.plural}/{ref.name}: {status} {reason_of(json.dumps(body))}", status
            )
        obj = None  # conflict or already created: read again
    raise ApiError(
        f"bump {ref.plural}/{ref.name}: still conflicting after {attempts} attempts", 409
    )


async def _read(http: Transport, ref: ObjectRef) -> Obj | None:
    status, body = await http.request("GET", ref.path())
    if status == 404:
        return None
    if status != 200:
        raise ApiError(
            f"read {ref.plural}/{ref.name}: {status} {reason_of(json.dumps(body))}", status
        )
    result: Obj = body
    return result


async def _write(
    http: Transport, ref: ObjectRef, obj: Obj | None, generation: int, notes: Mapping[str, str]
) -> tuple[int, Any]:
    """PUT ``obj`` with the new generation (its resourceVersion as precondition), or POST
    a new object when there is none."""
    new: Obj = copy.deepcopy(obj) if obj else {"apiVersion": ref.api_version, "kind": ref.kind}
    meta: Obj = new.setdefault("metadata", {"name": ref.name, "namespace": ref.namespace})
    meta["annotations"] = {**(meta.get("annotations") or {}), **notes, GENERATION: str(generation)}
    if obj is None:
        return await http.request("POST", ref.path(item=False), body=new)
    return await http.request("PUT", ref.path(), body=new)
