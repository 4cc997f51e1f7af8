"""The fake API's object store: what etcd and the watch cache give a real API server.

One cluster-wide resourceVersion, increased by every change of any object; a bounded history
of changes, so a watch can start from an older resourceVersion, and one too old for it is
answered 410 Gone; and the open watches, each fed the changes that match it. An update that
changes nothing keeps the resourceVersion and tells nobody, as a real API server does.

Not thread-safe on its own: `FakeApi` calls it under its lock. Watch queues live on the
server's loop and are fed with `call_soon_threadsafe`, so a change made from a test's thread
reaches them too.
"""

import asyncio
import copy
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.kube.manifests import timestamp

Obj = dict[str, Any]
Key = tuple[str, str, str]
"""(resource plural, namespace, name)."""
HISTORY = 1000
"""Changes kept for watches that start from an older resourceVersion."""


@dataclass(frozen=True)
class Change:
    """One watch event, as stored: the object after the change (for DELETED: before it)."""

    resource_version: int
    type: str
    """ADDED, MODIFIED or DELETED."""
    resource: str
    obj: Obj

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"].get("namespace", ""))


Selector = Callable[[Obj], bool]


@dataclass(eq=False)
class Watcher:
    """An open watch: its filter, its queue (on the server loop) and how it ends."""

    resource: str
    namespace: str
    selects: Selector
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Change | str] = field(default_factory=asyncio.Queue)
    """Changes, or an order: "drop" (abort the connection), "end" (finish it cleanly),
    "freeze" (send nothing more until "drop" or "end")."""

    def wants(self, change: Change) -> bool:
        return (
            change.resource == self.resource
            and change.namespace == self.namespace
            and self.selects(change.obj)
        )

    def tell(self, item: Change | str) -> None:
        self.loop.call_soon_threadsafe(self.queue.put_nowait, item)


class Store:
    def __init__(self, history: int = HISTORY) -> None:
        self.resource_version = 0
        self._objects: dict[Key, Obj] = {}
        self._history: deque[Change] = deque(maxlen=history)
        self._oldest = 0
        """Changes after this resourceVersion are all in the history."""
        self._watchers: set[Watcher] = set()
        self._listeners: list[Callable[[Change], None]] = []

    # -- reading -------------------------------------------------------------------------

    def get(self, resource: str, namespace: str, name: str) -> Obj | None:
        found = self._objects.get((resource, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def select(self, resource: str, namespace: str, selects: Selector) -> list[Obj]:
        """Matching objects in name order (a real API server sorts by key)."""
        keys = sorted(k for k in self._objects if k[:2] == (resource, namespace))
        found = [self._objects[k] for k in keys]
        return [copy.deepcopy(obj) for obj in found if selects(obj)]

    def since(self, watcher: Watcher, resource_version: int) -> list[Change] | None:
        """The changes after ``resource_version`` that ``watcher`` wants; None when some of
        them are no longer kept (the client must list again: 410 Gone)."""
        if resource_version < self._oldest:
            return None
        return [
            c for c in self._history if c.resource_version > resource_version and watcher.wants(c)
        ]

    # -- changing ------------------------------------------------------------------------

    def put(self, resource: str, obj: Obj) -> tuple[Obj, bool]:
        """Create or replace ``obj`` as given, with a new resourceVersion (and uid and
        creationTimestamp when new); returns what is stored and whether anything changed."""
        meta = obj["metadata"]
        key = (resource, meta.get("namespace", ""), meta["name"])
        old = self._objects.get(key)
        new = copy.deepcopy(obj)
        new_meta = new["metadata"]
        if old is not None:
            for kept in ("uid", "creationTimestamp"):
                new_meta.setdefault(kept, old["metadata"].get(kept))
            new_meta["resourceVersion"] = old["metadata"]["resourceVersion"]
            if new == old:
                return copy.deepcopy(old), False
        new_meta.setdefault("uid", str(uuid.uuid4()))
        new_meta.setdefault("creationTimestamp", timestamp())
        self.resource_version += 1
        new_meta["resourceVersion"] = str(self.resource_version)
        self._objects[key] = new
        self._record(Change(self.resource_version, "MODIFIED" if old else "ADDED", resource, new))
        return copy.deepcopy(new), True

    def delete(self, resource: str, namespace: str, name: str) -> Obj | None:
        old = self._objects.pop((resource, namespace, name), None)
        if old is None:
            return None
        self.resource_version += 1
        gone = copy.deepcopy(old)
        gone["metadata"]["resourceVersion"] = str(self.resource_version)
        self._record(Change(self.resource_version, "DELETED", resource, gone))
        return gone

    def compact(self) -> None:
        """Forget every change so far: a watch or list from an older resourceVersion is 410."""
        self._history.clear()
        self._oldest = self.resource_version

    def _record(self, change: Change) -> None:
        if len(self._history) == self._history.maxlen:
            self._oldest = self._history[0].resource_version
        self._history.append(change)
        for watcher in self._watchers:
            if watcher.wants(change):
                watcher.tell(change)
        for listener in self._listeners:
            listener(change)

    # -- watches and listeners -------------------------------------------------------------

    def open(self, watcher: Watcher) -> None:
        self._watchers.add(watcher)

    def close(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def watchers(self, resource: str | None = None) -> list[Watcher]:
        return [w for w in self._watchers if resource in (None, w.resource)]

    def listen(self, listener: Callable[[Change], None]) -> None:
        """Call ``listener`` after every change, under the lock (it must not block)."""
        self._listeners.append(listener)
