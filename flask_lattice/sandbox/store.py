"""The sandbox's state: Stripe objects by kind and id, private bookkeeping, and persistence."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from .ids import kind_of
from .wire import JSON, no_such

#: Seconds before a new object shows up in search results (Stripe: "usually under a minute").
DEFAULT_SEARCH_DELAY = 1.0


class Store:
    """Every object the sandbox holds, in creation order, behind one re-entrant lock.

    ``objects[kind][id]`` is the object exactly as the API returns it; ``private[id]`` holds what
    Stripe keeps to itself (card numbers, webhook secrets, dunning schedules).
    """

    def __init__(self, search_delay: float = DEFAULT_SEARCH_DELAY) -> None:
        self.lock = threading.RLock()
        self.objects: dict[str, dict[str, JSON]] = {}
        self.private: dict[str, JSON] = {}
        self.idempotency: dict[str, JSON] = {}
        self.clock_offset = 0.0
        self.search_delay = search_delay
        self._searchable_at: dict[str, float] = {}

    def put(self, obj: JSON) -> JSON:
        """Insert or replace ``obj`` under its kind (a new object is searchable only later)."""
        kind = self.objects.setdefault(obj["object"], {})
        if obj["id"] not in kind:
            self._searchable_at[obj["id"]] = time.time() + self.search_delay
        kind[obj["id"]] = obj
        return obj

    def searchable(self, objects: list[JSON]) -> list[JSON]:
        """The ``objects`` the search index has caught up with (real time, ``search_delay``)."""
        now = time.time()
        return [obj for obj in objects if self._searchable_at.get(obj["id"], 0.0) <= now]

    def search_lag(self) -> float:
        """Seconds until every object created so far is searchable (0 when caught up)."""
        return max(0.0, max(self._searchable_at.values(), default=0.0) - time.time())

    def find(self, object_id: str) -> JSON | None:
        """The object with ``object_id`` whatever its kind, or None."""
        kind = kind_of(object_id)
        if kind == "subscription_item":
            return self.subscription_item(object_id)
        return self.objects.get(kind or "", {}).get(object_id)

    def expandable(self, object_id: str) -> JSON | None:
        """What ``expand`` puts in place of ``object_id``: the object, or a deleted stub.

        Stripe expands a reference to a deleted object (a customer) into
        ``{"id", "object", "deleted": true}``.
        """
        found = self.find(object_id)
        if found is None and self.private.get(object_id, {}).get("deleted"):
            return {"id": object_id, "object": kind_of(object_id), "deleted": True}
        return found

    def get(self, kind: str, object_id: str, param: str = "id") -> JSON:
        """The ``kind`` object with ``object_id``, or Stripe's 404."""
        obj = self.objects.get(kind, {}).get(object_id)
        if obj is None:
            raise no_such(kind, object_id, param)
        return obj

    def all(self, kind: str) -> list[JSON]:
        """Every ``kind`` object, newest first (Stripe's list order)."""
        return sorted(
            reversed(list(self.objects.get(kind, {}).values())),
            key=lambda obj: -int(obj.get("created", 0)),
        )

    def subscription_item(self, item_id: str) -> JSON | None:
        """A subscription item, looked up inside its subscription."""
        for sub in self.objects.get("subscription", {}).values():
            for item in sub["items"]["data"]:
                if item["id"] == item_id:
                    return item  # type: ignore[no-any-return]
        return None

    def secret(self, object_id: str) -> JSON:
        """The private record kept for ``object_id`` (created empty on first use)."""
        return self.private.setdefault(object_id, {})

    def snapshot(self) -> JSON:
        """Everything, as JSON-able data."""
        return {
            "objects": self.objects,
            "private": self.private,
            "idempotency": self.idempotency,
            "clock_offset": self.clock_offset,
        }

    def restore(self, data: JSON) -> None:
        """Replace the state with a :meth:`snapshot`."""
        self.objects = data["objects"]
        self.private = data["private"]
        self.idempotency = data["idempotency"]
        self.clock_offset = data["clock_offset"]
        self._searchable_at = {}

    def clear(self) -> None:
        """Forget everything."""
        self.restore({"objects": {}, "private": {}, "idempotency": {}, "clock_offset": 0.0})


class Snapshots:
    """A one-row SQLite table holding the latest JSON snapshot of a :class:`Store`."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        with sqlite3.connect(self.path) as db:
            db.execute("CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY, data TEXT)")

    def load(self) -> JSON | None:
        """The saved snapshot, if any."""
        with sqlite3.connect(self.path) as db:
            row = db.execute("SELECT data FROM snapshot WHERE id = 1").fetchone()
        return json.loads(row[0]) if row else None

    def save(self, data: Any) -> None:
        """Overwrite the saved snapshot."""
        text = json.dumps(data, separators=(",", ":"))
        with sqlite3.connect(self.path) as db:
            db.execute("INSERT OR REPLACE INTO snapshot (id, data) VALUES (1, ?)", (text,))
