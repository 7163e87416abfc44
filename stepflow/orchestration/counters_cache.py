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

from dataclasses import replace
from datetime import datetime

from stepflow.engine.status import StepCounts, StepTally
from stepflow.orchestration.process_cache import ProcessCache

COUNTERS_CACHE = "stepflow.counters"
"""The ``Session.info`` key of the process's :class:`CountersCache`."""

Counters = tuple[dict[int, StepCounts], dict[int, datetime | None], StepTally | None]
"""One workflow's counters by step id, when each step was launched, and what they show (if
it was tallied)."""


def _newer(new: tuple[int, Counters], held: tuple[int, Counters]) -> bool:
    return new[0] >= held[0]


class CountersCache:
    """Each workflow's committed counters at one version, shared by the threads of one process
    (the ``size`` most recently used workflows, :class:`ProcessCache`). ``get`` and ``put``
    copy, so a transaction may change what it got."""

    def __init__(self, size: int = 4096) -> None:
        self._entries: ProcessCache[tuple[int, Counters]] = ProcessCache(size, supersedes=_newer)

    def get(self, workflow_id: int, inserted_at: datetime, version: int) -> Counters | None:
        """The counters of this workflow at ``version``, if this process holds them."""
        entry = self._entries.get((workflow_id, inserted_at))
        if entry is None or entry[0] != version:
            return None
        counts, launched, tally = entry[1]
        return dict(counts), dict(launched), replace(tally) if tally is not None else None

    def put(self, workflow_id: int, inserted_at: datetime, version: int, counters: Counters) -> None:
        """Keep the counters committed (or read) at ``version``; an older version than the one
        held is ignored (two threads may commit one workflow one after the other)."""
        counts, launched, tally = counters
        kept = dict(counts), dict(launched), replace(tally) if tally is not None else None
        self._entries.put((workflow_id, inserted_at), (version, kept))
