"""The steps of launched workflows, kept per process.

A workflow's steps never change after launch, so a worker message need not read (and decode,
and index) them again: a process gives its sessions one :class:`StepsCache` (``sessionmaker(info=
{STEPS_CACHE: StepsCache()})``, as :class:`~stepflow.resources.Resources` does), and
:class:`~stepflow.orchestration.locked_workflow.LockedWorkflow` reads through it. No other
process needs to see it: it only holds what cannot change.
"""

from __future__ import annotations

from stepflow.engine.graph import StepGraph
from stepflow.models import Workflow
from stepflow.orchestration.process_cache import ProcessCache

STEPS_CACHE = "stepflow.steps"
"""The ``Session.info`` key of the process's :class:`StepsCache`."""


class StepsCache:
    """Each workflow's steps, indexed (:class:`StepGraph`), shared by the threads of one
    process: they never change after launch, so a worker message need not read (and decode,
    and index) them again. Holds the ``size`` most recently used workflows
    (:class:`ProcessCache`). The graphs are shared: read them, never change them."""

    def __init__(self, size: int = 4096) -> None:
        self._graphs: ProcessCache[StepGraph] = ProcessCache(size)

    def get(self, workflow: Workflow) -> StepGraph | None:
        return self._graphs.get((workflow.id, workflow.inserted_at))

    def put(self, workflow: Workflow, graph: StepGraph) -> None:
        self._graphs.put((workflow.id, workflow.inserted_at), graph)
