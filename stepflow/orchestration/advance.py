"""Starting every step that may start, in the transaction that holds the workflow lock."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from stepflow.orchestration import live
from stepflow.orchestration.outbox import Owed
from stepflow.orchestration.locked_workflow import LockedWorkflow
from stepflow.engine.graph import steps_to_start
from stepflow.engine.launch import input_steps, plan_step
from stepflow.engine.live import live_steps_to_start, plan_live_step
from stepflow.engine.states import ADVANCING_WORKFLOW_STATES
from stepflow.engine.templates import WorkflowContext
from stepflow.models import Workflow
from stepflow.models.base import utcnow


def workflow_context(workflow: Workflow, work_directory: str) -> WorkflowContext:
    """What templates of this workflow may refer to, dated now."""
    return WorkflowContext(workflow.id, workflow.reference, workflow.parameters, work_directory, utcnow())


def _startable(locked: LockedWorkflow) -> list[Mapping[str, Any]]:
    """The steps that may start now: of those a change may have made startable since the last
    pass (``LockedWorkflow.unadvanced``), or of every step for a live workflow (engine.md §10)."""
    if locked.workflow.is_live:
        startable = live_steps_to_start(locked.steps, locked.counts())
    else:
        startable = steps_to_start(locked.graph, locked.counts(), among=locked.unadvanced())
    locked.advanced()
    return startable


def advance(locked: LockedWorkflow, work_directory: str) -> Owed:
    """Start steps until none can start (ours.md Q1), then settle the workflow status.

    Returns the orders of the new worker jobs and the new notification jobs; the caller sends
    them after commit. A paused or finished workflow starts nothing. A live workflow starts
    every step in one pass, parents first (engine.md §10): one live job each, announced to the
    worker manager.
    """
    workflow = locked.workflow
    owed = Owed()
    if workflow.status in ADVANCING_WORKFLOW_STATES:
        context = workflow_context(workflow, work_directory)
        started: set[int] = set()
        while startable := [s for s in _startable(locked) if s["id"] not in started]:
            for step in startable:
                started.add(step["id"])
                inputs = locked.job_inputs(input_steps(step))
                if workflow.is_live:
                    plans = [plan_live_step(step, context, inputs, str(uuid.uuid4()))]
                else:
                    plans = plan_step(step, context, inputs)
                for plan, job_id in locked.create_jobs(step, plans):
                    if workflow.is_live:
                        owed.add(live.created(locked, job_id, step, plan))
                    else:
                        owed.start(job_id, step, plan)
    locked.refresh_status()
    return owed
