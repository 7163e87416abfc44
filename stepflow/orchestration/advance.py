"""Starting every step that may start, in the transaction that holds the workflow lock."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stepflow.orchestration import live
from stepflow.orchestration.outbox import Owed
from stepflow.orchestration.locked_workflow import LockedWorkflow
from stepflow.engine.graph import steps_to_start
from stepflow.engine.launch import input_steps, plan_step
from stepflow.engine.live import live_steps_to_start, plan_live_step
from stepflow.engine.states import ADVANCING_WORKFLOW_STATES
from stepflow.engine.templates import WorkflowContext
from stepflow.models import Job, Workflow
from stepflow.models.base import utcnow


def job_inputs(session: Session, workflow_id: int, step_ids: Iterable[int]) -> dict[int, list[list[dict[str, Any]]]]:
    """Parameters of the jobs of ``step_ids``, per step, in creation order."""
    ids = list(step_ids)
    inputs: dict[int, list[list[dict[str, Any]]]] = defaultdict(list)
    if ids:
        rows = session.execute(
            select(Job.step_id, Job.parameters)
            .where(Job.workflow_id == workflow_id, Job.step_id.in_(ids))
            .order_by(Job.id)
        )
        for step_id, parameters in rows:
            inputs[step_id].append(parameters)
    return inputs


def workflow_context(workflow: Workflow, work_directory: str) -> WorkflowContext:
    """What templates of this workflow may refer to, dated now."""
    return WorkflowContext(workflow.id, workflow.reference, workflow.parameters, work_directory, utcnow())


def advance(locked: LockedWorkflow, work_directory: str) -> Owed:
    """Start steps until none can start (ours.md Q1), then settle the workflow status.

    Returns the orders of the new worker jobs and the new notification jobs; the caller sends
    them after commit. A paused or finished workflow starts nothing. A live workflow starts
    every step in one pass, parents first (engine.md §10): one live job each, announced to the
    worker manager.
    """
    workflow = locked.workflow
    owed = Owed()
    gate = live_steps_to_start if workflow.is_live else steps_to_start
    if workflow.status in ADVANCING_WORKFLOW_STATES:
        context = workflow_context(workflow, work_directory)
        started: set[int] = set()
        while startable := [s for s in gate(locked.steps, locked.counts()) if s["id"] not in started]:
            for step in startable:
                started.add(step["id"])
                inputs = job_inputs(locked.session, workflow.id, input_steps(step))
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
