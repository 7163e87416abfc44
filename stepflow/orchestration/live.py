"""Live jobs (engine.md §10) under the workflow lock: what their workers' reports change and
which messages they owe.

A live job's worker is created by the worker manager (a ``create`` message), announces
itself (``worker_created``), is initialised (``init_process`` → ``worker_initialized``),
started (``start_process`` → ``worker_started``), may be updated, and is deleted once the
job stopped (a ``delete`` message). Every message goes through the outbox, in the
transaction that decided it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select

from stepflow.orchestration.outbox import Owed, owe_direct_message
from stepflow.orchestration.locked_workflow import LockedWorkflow
from stepflow.engine.graph import parent_ids
from stepflow.engine.launch import JobPlan
from stepflow.engine.live import LiveWorkerFacts, process_parameters, queue_name_of
from stepflow.engine.states import FINAL_JOB_STATES, JobState
from stepflow.models import Job, LiveWorker
from stepflow.models.base import utcnow
from stepflow.wire.direct_messaging import live_process_order, stop_process
from stepflow.wire.worker_manager import worker_manager_message
from stepflow.workers import upsert_live_worker

WAITING_ORDERS = {
    JobState.READY_TO_INIT: ("init_process", JobState.INITIALIZING),
    JobState.READY_TO_START: ("start_process", JobState.STARTING),
}
"""A live job waiting for an order: the order StepFlow sends and the state it moves to."""
DRIVEN_STATES = frozenset(
    {JobState.INITIALIZING, JobState.READY_TO_START, JobState.STARTING, JobState.PROCESSING, JobState.UPDATING}
)
"""Live jobs whose worker has received ``init_process``: stopping them is the worker's business."""
RUNNING_STATES = frozenset({JobState.PROCESSING, JobState.UPDATING})
WORKER_REPORT_PARAMETERS = frozenset({"instance_id", "host_ip", "ports"})


def created(locked: LockedWorkflow, job_id: int, step: Mapping[str, Any], plan: JobPlan) -> Owed:
    """A new live job: its live worker row (known by its queue name until the worker
    announces itself) and the manager's ``create`` message. A skipped or error job has none."""
    queue_name = queue_name_of(plan.parameters)
    if plan.state != JobState.QUEUED or queue_name is None:
        return Owed()
    upsert_live_worker(locked.session, job_id, queue_name)
    message = worker_manager_message(job_id, step["id"], plan.parameters, "create")
    return Owed(direct_messages=[owe_direct_message(locked.session, message)])


def deleted(locked: LockedWorkflow, job: Job) -> Owed:
    """The manager's ``delete`` message for a live job that stopped."""
    message = worker_manager_message(job.id, job.step_id, job.parameters, "delete")
    return Owed(direct_messages=[owe_direct_message(locked.session, message)])


def _workers(locked: LockedWorkflow, job_ids: Iterable[int] | None = None) -> dict[int, LiveWorker]:
    """The live workers of the workflow's jobs (or of ``job_ids``), by job id, fresh."""
    query = select(LiveWorker).join(Job, Job.id == LiveWorker.job_id).where(Job.workflow_id == locked.id)
    if job_ids is not None:
        query = query.where(Job.id.in_(list(job_ids)))
    rows = locked.session.scalars(query.order_by(LiveWorker.id).execution_options(populate_existing=True))
    return {worker.job_id: worker for worker in rows}


def _facts(worker: LiveWorker | None) -> LiveWorkerFacts | None:
    if worker is None:
        return None
    return LiveWorkerFacts(worker.instance_id, worker.creation_date, list(worker.ips), list(worker.ports))


def send_due(locked: LockedWorkflow) -> Owed:
    """Send ``init_process`` / ``start_process`` to every live job waiting for one, as soon as
    it can be generated (``engine.live.process_parameters``); the job moves to
    ``initializing`` / ``starting``. Run after every change a live job's worker reports: a
    child waits for its parent's worker as much as for its own."""
    session = locked.session
    waiting = session.scalars(
        select(Job)
        .where(Job.workflow_id == locked.id, Job.is_live.is_(True), Job.state.in_(tuple(WAITING_ORDERS)))
        .order_by(Job.id)
    ).all()
    owed = Owed()
    if not waiting:
        return owed
    workers = _workers(locked)
    job_of_step = {
        step_id: job_id
        for step_id, job_id in session.execute(select(Job.step_id, Job.id).where(Job.workflow_id == locked.id))
    }
    steps = {step["id"]: step for step in locked.steps}
    for job in waiting:
        step = steps[job.step_id]
        parents = parent_ids(step)
        parent = workers.get(job_of_step.get(parents[0], -1)) if parents else None
        worker = workers.get(job.id)
        parameters = process_parameters(step, job.parameters, _facts(worker), _facts(parent))
        if worker is None or parameters is None:
            continue
        order, state = WAITING_ORDERS[job.state]
        if parameters != job.parameters:
            locked.set_parameters(job, parameters)  # the parent's stream address is kept (engine.md §10)
        locked.move_job(job, state)
        message = live_process_order(order, job.id, parameters, worker.instance_id)
        owed.direct_messages.append(owe_direct_message(session, message))
    return owed


def worker_announced(locked: LockedWorkflow, job: Job, instance_id: str | None) -> None:
    """``worker_created``: the worker exists from now on (the first announcement dates it), and
    its own ``instance_id`` is the one it binds for direct messages."""
    worker = _workers(locked, [job.id]).get(job.id)
    queue_name = queue_name_of(job.parameters) or ""
    changes: dict[str, Any] = {}
    if worker is None or worker.creation_date is None:
        changes["creation_date"] = utcnow()
    if instance_id and (worker is None or worker.instance_id != instance_id):
        changes["instance_id"] = instance_id
    if changes:
        upsert_live_worker(locked.session, job.id, queue_name, **changes)


def reports_worker(parameters: Iterable[Mapping[str, Any]]) -> bool:
    """Whether a live ``job_completed`` is the manager's report of the worker it created
    (``instance_id``, ``host_ip``, ``ports``) rather than the end of the job."""
    return any(parameter.get("id") in WORKER_REPORT_PARAMETERS for parameter in parameters)


def _ports(value: Any) -> list[int]:
    values = value if isinstance(value, list) else [value]
    return [int(port) for port in values if isinstance(port, int) or (isinstance(port, str) and port.isdigit())]


def worker_reported(locked: LockedWorkflow, job: Job, parameters: Iterable[Mapping[str, Any]]) -> None:
    """Store the manager's report on the job's live worker: ``ips = [host_ip]``, ``ports``, and
    ``instance_id`` unless the worker already announced its own. Reporting twice changes nothing."""
    values = {parameter.get("id"): parameter.get("value") for parameter in parameters}
    worker = _workers(locked, [job.id]).get(job.id)
    changes: dict[str, Any] = {}
    if isinstance(values.get("host_ip"), str) and values["host_ip"]:
        changes["ips"] = [values["host_ip"]]
    if values.get("ports") is not None:
        changes["ports"] = _ports(values["ports"])
    instance_id = values.get("instance_id")
    if isinstance(instance_id, str) and instance_id and (worker is None or not worker.instance_id):
        changes["instance_id"] = instance_id
    queue_name = queue_name_of(job.parameters) or str(values.get("direct_messaging_queue_name") or "")
    upsert_live_worker(locked.session, job.id, queue_name, **changes)


def stop_jobs(locked: LockedWorkflow) -> Owed:
    """Stop every unfinished live job of the workflow (the ``stop`` / ``abort`` events).

    A worker already driven gets ``stop_process``; its ``job_stopped`` then stops the job and
    deletes the worker. Any other job stops now and its worker is deleted.
    """
    session = locked.session
    jobs = session.scalars(
        select(Job).where(Job.workflow_id == locked.id, Job.state.not_in(FINAL_JOB_STATES)).order_by(Job.id)
    ).all()
    workers = _workers(locked)
    owed = Owed()
    for job in jobs:
        worker = workers.get(job.id)
        if job.state in DRIVEN_STATES and worker is not None and worker.instance_id:
            message = stop_process(job.id, job.name, job.parameters, worker.instance_id)
            owed.direct_messages.append(owe_direct_message(session, message))
        else:
            locked.move_job(job, JobState.STOPPED, {"message": "stopped before it started"})
            owed.add(deleted(locked, job))
    return owed


def update(locked: LockedWorkflow, job: Job) -> Owed:
    """A running live job's worker gets ``update_process`` with the job's new parameters; the
    job is ``updating`` until ``worker_updated``. A job not running yet sends its new values
    with its next ``init_process`` / ``start_process``."""
    worker = _workers(locked, [job.id]).get(job.id)
    if job.state not in RUNNING_STATES or worker is None or not worker.instance_id:
        return Owed()
    locked.move_job(job, JobState.UPDATING)
    message = live_process_order("update_process", job.id, job.parameters, worker.instance_id)
    return Owed(direct_messages=[owe_direct_message(locked.session, message)])
