"""What StepFlow heard from workers about running jobs, as statements the actors and the
clock run: which worker runs a job (to address its ``stop_process``), when StepFlow last heard
of it, and which running jobs went silent or were abandoned (ours.md §3.11).

A worker speaks of a job through its progressions (the SDK puts its instance id in
``docker_container_id``) and through its status answers (``current_job``). Times are
StepFlow's own receipt times, never the workers' clocks.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, Select, Text, case, cast, exists, func, literal, select, union_all
from sqlalchemy.orm import aliased

from stepflow.engine.states import JobState
from stepflow.models import Job, Progression, WorkerStatus
from stepflow.workers import TERMINATED


def _reports_job(job_id: ColumnElement[int] | int, status: Any = WorkerStatus) -> ColumnElement[bool]:
    """The worker status names ``job_id`` as its current job."""
    return status.current_job["job_id"].astext == cast(job_id, Text)


def job_worker_instance(job_id: int) -> Select[tuple[str]]:
    """The ``instance_id`` of the worker running ``job_id``, from the latest evidence: a worker
    status naming it as the current job, or the worker of its last progression (the SDK puts
    its instance id in ``docker_container_id``). Only workers StepFlow has a status of, and not
    terminated, qualify, so that a direct message addressed to it is routed."""
    alive = WorkerStatus.activity != TERMINATED
    by_status = select(WorkerStatus.instance_id.label("instance_id"), WorkerStatus.updated_at.label("seen_at")).where(
        _reports_job(job_id), alive
    )
    by_progression = (
        select(WorkerStatus.instance_id, Progression.inserted_at)
        .join(WorkerStatus, WorkerStatus.instance_id == Progression.docker_container_id)
        .where(Progression.job_id == job_id, alive)
    )
    evidence = union_all(by_status, by_progression).subquery()
    return select(evidence.c.instance_id).order_by(evidence.c.seen_at.desc()).limit(1)


def _seconds(value: ColumnElement[float] | float) -> ColumnElement[Any]:
    """An interval of ``value`` seconds (fractions kept)."""
    seconds = value if isinstance(value, ColumnElement) else literal(float(value), Float)
    return func.make_interval(0, 0, 0, 0, 0, 0, seconds)


def _last_news() -> ColumnElement[datetime]:
    """When StepFlow last heard of the job from a worker: its last progression, or the last
    worker status naming it as current."""
    progression, status = aliased(Progression), aliased(WorkerStatus)
    last_progression = select(func.max(progression.inserted_at)).where(progression.job_id == Job.id)
    last_status = select(func.max(status.updated_at)).where(_reports_job(Job.id, status))
    return func.greatest(
        last_progression.correlate(Job).scalar_subquery(), last_status.correlate(Job).scalar_subquery()
    )


_RUNNING_WORKER_JOB = (Job.state == JobState.PROCESSING, Job.kind == "worker", Job.is_live.is_(False))


def silent_jobs(now: datetime, default_lease: float, leases: Mapping[str, float]) -> Select[tuple[int]]:
    """Running jobs whose worker sent no news for longer than their queue's lease (ours.md §3.11).

    The lease starts at the job's first progression and is refreshed by every progression
    and by every worker status naming the job as its current one (the status broadcast is the
    heartbeat of long jobs without progress). Jobs that are only dispatched, and live jobs,
    have no lease.
    """
    lease = (
        case({queue: literal(seconds, Float) for queue, seconds in leases.items()}, value=Job.name, else_=default_lease)
        if leases
        else literal(default_lease, Float)
    )
    return select(Job.id).where(*_RUNNING_WORKER_JOB, _last_news() < literal(now) - _seconds(lease)).order_by(Job.id)


def abandoned_jobs(grace: float) -> Select[tuple[int]]:
    """Running jobs the worker that took them has moved on from: ``grace`` seconds or more
    after the job's last news, that worker (the one of its last progression) reported a status
    naming no job or another one, and the job's answer never came.

    SDK 2.2.1 does this when an order reaches it while it is busy: it may then never answer
    for the job it was running (seen with two workers on one queue). A worker that crashed is
    not covered (it reports nothing; the broker gives its order to another worker).
    """
    taker = (
        select(Progression.docker_container_id)
        .where(Progression.job_id == Job.id)
        .order_by(Progression.id.desc())
        .limit(1)
        .correlate(Job)
        .scalar_subquery()
    )
    moved_on = exists(
        select(WorkerStatus.instance_id)
        .where(
            WorkerStatus.instance_id == taker,
            WorkerStatus.activity != TERMINATED,
            ~func.coalesce(_reports_job(Job.id), False),
            WorkerStatus.updated_at > _last_news() + _seconds(grace),
        )
        .correlate(Job)
    )
    return select(Job.id).where(*_RUNNING_WORKER_JOB, moved_on).order_by(Job.id)
