"""The step counters a process last committed or read, kept per workflow and counters version.

Every transaction that writes a workflow's step counters bumps ``workflows.counters_version``
in the same statement (``LockedWorkflow``). A transaction that locks the workflow reads the
version with the row; if this process holds the counters of that very version, they are the
ones in the database (no other transaction can have written them since: it would have bumped
the version, and the lock keeps anyone from writing them now), so they need not be read again.
A process gives its sessions one :class:`CountersCache` (``sessionmaker(info={COUNTERS_CACHE:
CountersCache()})``, as :class:`~stepflow.resources.Resources` does); entries are put only
after their transaction committed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime

from stepflow.engine.status import StepCounts

COUNTERS_CACHE = "stepflow.counters"
"""The ``Session.info`` key of the process's :class:`CountersCache`."""

Counters = tuple[dict[int, StepCounts], dict[int, datetime | None]]
"""One workflow's counters by step id, and when each step was launched."""


class CountersCache:
    """Each workflow's committed counters at one version, shared by the threads of one process
    (the ``size`` most recently used workflows). A workflow is known by its id and creation
    time (an id alone may come back after the database was emptied). ``get`` and ``put`` copy,
    so a transaction may change what it got."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[int, datetime], tuple[int, Counters]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, workflow_id: int, inserted_at: datetime, version: int) -> Counters | None:
        """The counters of this workflow at ``version``, if this process holds them."""
        key = (workflow_id, inserted_at)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != version:
                return None
            self._entries.move_to_end(key)
            counts, launched = entry[1]
            return dict(counts), dict(launched)

    def put(self, workflow_id: int, inserted_at: datetime, version: int, counters: Counters) -> None:
        """Keep the counters committed (or read) at ``version``; an older version than the one
        held is ignored (two threads may commit one workflow one after the other)."""
        key = (workflow_id, inserted_at)
        counts, launched = counters
        with self._lock:
            held = self._entries.get(key)
            if held is not None and held[0] > version:
                return
            self._entries[key] = (version, (dict(counts), dict(launched)))
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
