"""A bounded, thread-safe map of what one process keeps about launched workflows.

The steps cache and the counters cache (``steps_cache``, ``counters_cache``) keep values by
workflow in one :class:`ProcessCache`: the ``size`` most recently used entries, shared by the
process's threads. A workflow is known by its id and creation time (an id alone may come back
after the database was emptied).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from collections.abc import Callable
from typing import Generic, TypeVar

Value = TypeVar("Value")

WorkflowKey = tuple[int, datetime]
"""A workflow's id and creation time."""


def _always(new: object, held: object) -> bool:
    return True


class ProcessCache(Generic[Value]):
    """The ``size`` most recently used values by workflow key; ``get`` and ``put`` hold a lock.
    ``supersedes(new, held)`` says whether a value put replaces the one held (by default it
    always does)."""

    def __init__(self, size: int = 4096, supersedes: Callable[[Value, Value], bool] = _always) -> None:
        self._size = size
        self._supersedes = supersedes
        self._entries: OrderedDict[WorkflowKey, Value] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: WorkflowKey) -> Value | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: WorkflowKey, value: Value) -> None:
        with self._lock:
            held = self._entries.get(key)
            if held is not None and not self._supersedes(value, held):
                return
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
