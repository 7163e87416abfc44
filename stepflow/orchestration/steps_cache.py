"""The steps of launched workflows, kept per process.

A workflow's steps never change after launch, so a worker message need not read (and decode)
them again: a process gives its sessions one :class:`StepsCache` (``sessionmaker(info=
{STEPS_CACHE: StepsCache()})``, as :class:`~stepflow.resources.Resources` does), and
:class:`~stepflow.orchestration.locked_workflow.LockedWorkflow` reads through it. No other
process needs to see it: it only holds what cannot change.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

from stepflow.models import Workflow

STEPS_CACHE = "stepflow.steps"
"""The ``Session.info`` key of the process's :class:`StepsCache`."""


class StepsCache:
    """Each workflow's steps, shared by the threads of one process: they never change after
    launch, so a worker message need not read (and decode) them again. A workflow is known by
    its id and creation time (an id alone may come back after the database was emptied). Holds
    the ``size`` most recently used workflows. The lists are shared: read them, never change them."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._steps: OrderedDict[tuple[int, datetime], list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, workflow: Workflow) -> list[dict[str, Any]] | None:
        key = (workflow.id, workflow.inserted_at)
        with self._lock:
            steps = self._steps.get(key)
            if steps is not None:
                self._steps.move_to_end(key)
            return steps

    def put(self, workflow: Workflow, steps: list[dict[str, Any]]) -> None:
        key = (workflow.id, workflow.inserted_at)
        with self._lock:
            self._steps[key] = steps
            self._steps.move_to_end(key)
            while len(self._steps) > self._size:
                self._steps.popitem(last=False)
