"""Workflow events (``POST /workflows/:id/events``, ours.md §3.5), decided under the workflow lock.

Each function changes the state in the caller's transaction and returns what must be sent
once it commits (``Owed``). A request the current state does not allow raises
``EventRefused`` with the status code and JSON body to answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from sqlalchemy import delete as sql_delete
from sqlalchemy import select
from sqlalchemy.orm import Session

from stepflow.orchestration import live
from stepflow.orchestration.advance import advance, workflow_context
from stepflow.orchestration.outbox import Owed, owe_direct_message
from stepflow.orchestration.locked_workflow import LockedWorkflow
from stepflow.orchestration.worker_news import job_worker_instance
from stepflow.changes import JOB_RETRIED, WORKFLOW_DELETED, job_ref
from stepflow.engine.launch import JobPlan, input_steps, plan_step
from stepflow.engine.states import ACTIVE_STATES, RETRYABLE_STATES, UPDATE, JobState, WorkflowState
from stepflow.engine.status import workflow_status
from stepflow.engine.transitions import Verdict, WorkflowEvent, verdict
from stepflow.models import Job, Update, Workflow
from stepflow.wire.direct_messaging import add_to_black_list, stop_process
from stepflow.wire.orders import JobOrder, Submission

log = structlog.get_logger(__name__)


class EventRefused(Exception):
    """The event cannot apply now: answer ``status_code`` with ``body``."""

    def __init__(self, status_code: int, body: dict[str, Any]) -> None:
        super().__init__(status_code, body)
        self.status_code = status_code
        self.body = body


def _conflict(message: str) -> EventRefused:
    return EventRefused(409, {"status": "error", "message": message})


def _lock(session: Session, workflow_id: int) -> LockedWorkflow:
    locked = LockedWorkflow.lock(session, workflow_id)
    if locked is None:
        raise EventRefused(404, {"errors": {"detail": f"Workflow {workflow_id} not found"}})
    structlog.contextvars.bind_contextvars(workflow_id=workflow_id)
    return locked


def _applies(locked: LockedWorkflow, event: WorkflowEvent) -> bool:
    """Whether ``event`` applies to the workflow in its status (False: nothing to do); raises
    ``EventRefused`` (409) when the status refuses it (``stepflow.engine.transitions``)."""
    status = locked.workflow.status
    found = verdict(event, status)
    if found is Verdict.CONFLICT:
        raise _conflict(f"workflow {locked.id} is {status}")
    return found is Verdict.APPLY


def _job_of(session: Session, locked: LockedWorkflow, job_id: int) -> Job:
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise EventRefused(404, {"errors": {"detail": f"Job {job_id} not found"}})
    if job.workflow_id != locked.id:
        raise EventRefused(404, {"status": "error", "message": f"job {job_id} not in workflow {locked.id}"})
    return job


def _replan(locked: LockedWorkflow, job: Job, work_directory: str) -> Owed:
    """Plan the job's step again (conditions and templates re-evaluated) into the same slot.
    Only a step's one planning error job (input 0) has no parameters, so the step's other
    inputs have no job yet: they get theirs."""
    owed = Owed()
    step = next(s for s in locked.steps if s["id"] == job.step_id)
    inputs = locked.job_inputs(input_steps(step))
    for plan in plan_step(step, workflow_context(locked.workflow, work_directory), inputs):
        if plan.input_index == job.input_index:
            locked.set_parameters(job, plan.parameters)
            job.kind = plan.kind
            description = {"message": plan.message} if plan.message else None
            if plan.state != JobState.QUEUED:
                locked.move_job(job, plan.state, description)
            owed.start(job.id, step, plan)
        else:
            for created, job_id in locked.create_jobs(step, [plan]):
                owed.start(job_id, step, created)
    return owed


def retry(session: Session, workflow_id: int, job_id: int, work_directory: str) -> Owed:
    """A job in error or stopped runs again in the same job row (attempt + 1).

    A worker job gets its stored order again; a notification runs again (Q11); a job that
    failed before it could run (a condition or template error, Q2) has its step planned again.
    """
    locked = _lock(session, workflow_id)
    job = _job_of(session, locked, job_id)
    _applies(locked, WorkflowEvent.RETRY)
    if job.state not in RETRYABLE_STATES:
        raise _conflict(f"job {job_id} is {job.state}: only a job in error or stopped can be retried")
    if job.is_live:
        raise _conflict(f"job {job_id} is live: its worker is gone, launch the workflow again")
    job.attempt += 1
    locked.unmark(job)
    locked.tell(JOB_RETRIED, job_ref(job))
    cause = locked.move_job(job, JobState.RETRYING, {"attempt": job.attempt})
    step = next(s for s in locked.steps if s["id"] == job.step_id)
    owed = Owed()
    if job.kind == "notification":
        owed.notifications.append(job.id)
    elif job.parameters:
        owed.orders.append(Submission(job.name, job.step_id, JobOrder(job.id, job.parameters)))
    else:
        owed = _replan(locked, job, work_directory)
    log.info("job retried", job_id=job_id, attempt=job.attempt, step_id=step["id"])
    locked.refresh_status(cause)
    return owed.add(advance(locked, work_directory))


def abort(session: Session, workflow_id: int, work_directory: str) -> Owed:
    """Stop everything now: steps not started get skipped jobs, queued jobs are black-listed
    and stopped, running jobs are told to stop; the workflow is ``aborted`` (terminal).
    The live jobs of a live workflow stop as ``live.stop_jobs`` says (engine.md §10 stop)."""
    locked = _lock(session, workflow_id)
    if not _applies(locked, WorkflowEvent.ABORT):
        return Owed()
    owed = Owed()
    counts = locked.counts()
    for step in locked.steps:
        if counts.get(step["id"]) is None or counts[step["id"]].total == 0:
            locked.create_job(step, JobPlan(0, JobState.SKIPPED))
    if locked.workflow.is_live:
        owed = live.stop_jobs(locked)
    active = session.scalars(
        select(Job)
        .where(Job.workflow_id == workflow_id, Job.state.in_(ACTIVE_STATES), Job.is_live.is_(False))
        .order_by(Job.id)
    )
    for job in active:
        if job.kind == "worker" and job.state == JobState.PROCESSING:
            instance_id = session.scalar(job_worker_instance(job.id))
            stop = stop_process(job.id, job.name, job.parameters, instance_id)
            owed.direct_messages.append(owe_direct_message(session, stop))
            continue
        if job.kind == "worker":  # its order may wait in a queue, marked dispatched or not yet
            owed.direct_messages.append(owe_direct_message(session, add_to_black_list(job.id, job.name)))
        locked.move_job(job, JobState.STOPPED, {"message": "aborted before it started"})
    locked.set_status(WorkflowState.ABORTED)
    log.info("workflow aborted")
    return owed


def pause(session: Session, workflow_id: int) -> None:
    """Start nothing new; running jobs finish and completion is still detected."""
    locked = _lock(session, workflow_id)
    if _applies(locked, WorkflowEvent.PAUSE):
        locked.set_status(WorkflowState.PAUSED)


def resume(session: Session, workflow_id: int, work_directory: str) -> Owed:
    """Recompute the status of a paused workflow and start what may start."""
    locked = _lock(session, workflow_id)
    if not _applies(locked, WorkflowEvent.RESUME):
        return Owed()
    locked.set_status(workflow_status(WorkflowState.PROCESSING, locked.steps, locked.counts()))
    return advance(locked, work_directory)


def update(session: Session, workflow_id: int, job_id: int, parameters: Sequence[Mapping[str, Any]]) -> Owed:
    """New values for an updatable job's parameters (a live job, or one in error or stopped,
    so that the next retry sends them). History only: the job's state does not change (Q8),
    except for a running live job, whose worker gets ``update_process`` (``live.update``)."""
    locked = _lock(session, workflow_id)
    job = _job_of(session, locked, job_id)
    if not (job.is_live or job.state in RETRYABLE_STATES):
        raise _conflict(f"job {job_id} is {job.state}: only a live job or a job in error or stopped can be updated")
    values = {entry["id"]: entry["value"] for entry in parameters}
    known = {parameter["id"] for parameter in job.parameters}
    unknown = sorted(set(values) - known)
    if unknown:
        raise EventRefused(422, {"errors": {f"parameters.{unknown[0]}": ["is not a parameter of this job"]}})
    updated = [
        {**parameter, "value": values[parameter["id"]]} if parameter["id"] in values else parameter
        for parameter in job.parameters
    ]
    locked.set_parameters(job, updated)
    session.add(Update(job_id=job.id, parameters=list(parameters)))
    locked.record(job, UPDATE, {"parameters": list(parameters)})
    return live.update(locked, job) if job.is_live else Owed()


def delete(session: Session, workflow_id: int, work_directory: str) -> Owed:
    """Abort the workflow if it still runs, then delete it with everything it owns."""
    locked = _lock(session, workflow_id)
    running = verdict(WorkflowEvent.ABORT, locked.workflow.status) is Verdict.APPLY
    owed = abort(session, workflow_id, work_directory) if running else Owed()
    locked.tell(WORKFLOW_DELETED)
    session.execute(sql_delete(Workflow).where(Workflow.id == workflow_id))
    log.info("workflow deleted")
    return owed
