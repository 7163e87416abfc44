"""Starting every step that may start, in the transaction that holds the workflow lock."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stepflow.actors.dispatch import Owed
from stepflow.actors.state import LockedWorkflow
from stepflow.engine.graph import steps_to_start
from stepflow.engine.launch import input_steps, plan_step
from stepflow.engine.status import TERMINAL_WORKFLOW_STATES
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
    them after commit. A paused or finished workflow starts nothing.
    """
    workflow = locked.workflow
    owed = Owed()
    if workflow.status not in TERMINAL_WORKFLOW_STATES and workflow.status != "paused":
        context = workflow_context(workflow, work_directory)
        started: set[int] = set()
        while startable := [s for s in steps_to_start(locked.steps, locked.counts()) if s["id"] not in started]:
            for step in startable:
                started.add(step["id"])
                inputs = job_inputs(locked.session, workflow.id, input_steps(step))
                for plan, job_id in locked.create_jobs(step, plan_step(step, context, inputs)):
                    owed.start(job_id, step, plan)
    locked.refresh_status()
    return owed
