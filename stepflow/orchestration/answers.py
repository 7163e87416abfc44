"""What a worker message does to its job (ours.md §3.4), inside the workflow's lock.

Every handler is idempotent: a redelivered message finds the job already in its target
state and changes nothing. A message that arrives too late (an error after a completion, a
progression for a stopped job) only writes history. In an aborted workflow a running job
still takes its final state, but nothing new starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from stepflow.orchestration import live
from stepflow.orchestration.advance import advance
from stepflow.orchestration.outbox import Owed
from stepflow.orchestration.locked_workflow import LockedWorkflow
from stepflow.changes import JOB_PROGRESSION, job_ref
from stepflow.engine.states import JobState, WorkflowState
from stepflow.engine.transitions import LIVE_REPORTS, Action, Event, Outcome, decide
from stepflow.models import Job, JobStatus, LiveWorker, Progression
from stepflow.models.base import utcnow
from stepflow.settings import Settings
from stepflow.wire import messages

log = structlog.get_logger(__name__)

QUEUE_NOT_FOUND_MESSAGE = "No worker is started with this queue name."
NOT_THE_CURRENT_JOB = "The Job ID is not the same as the current job."
"""What an SDK worker answers to a ``stop_process`` sent by queue for a job it does not run."""
WORKER_BUSY = "Cannot initialize this job, an another job is already in progress."
"""What an SDK 2.2.1 worker answers, racing another worker of its queue, for a job it never ran."""
NO_NEWS = "no news from worker"
MOVED_ON = "the worker moved on without answering for this job"

_ERROR_EVENTS = {NOT_THE_CURRENT_JOB: Event.OTHER_JOB, WORKER_BUSY: Event.BUSY}
"""The ``job_error`` descriptions that are not the job's error; any other is ``Event.ERROR``."""


class UnknownJob(LookupError):
    """The message names a job that does not exist (for example, of a deleted workflow)."""


@dataclass
class LockedJob:
    workflow: LockedWorkflow
    job: Job

    @property
    def aborted(self) -> bool:
        return self.workflow.workflow.status == WorkflowState.ABORTED


def lock_job(session: Session, job_id: int) -> LockedJob:
    """Lock the job's workflow and load the job; raises ``UnknownJob``. Within a transaction
    that locked a batch of jobs first (``LockedWorkflow.lock_jobs``), this reads nothing."""
    found = LockedWorkflow.lock_jobs(session, [job_id]).get(job_id)
    if found is None:
        raise UnknownJob(job_id)
    locked, job = found
    structlog.contextvars.bind_contextvars(workflow_id=locked.id)
    return LockedJob(locked, job)


def _outcome(locked: LockedJob, event: Event) -> Outcome:
    """What ``event`` does to the locked job (``stepflow.engine.transitions``)."""
    return decide(event, locked.job.state, locked.aborted)


def _apply(locked: LockedJob, outcome: Outcome, description: dict[str, Any] | None = None) -> int | None:
    """Write ``outcome``: the job moves (the id of its new history row is returned), or gets a history row
    marked ignored; a duplicate or an ignored message writes nothing."""
    if outcome.action is Action.MOVE:
        assert outcome.state is not None
        return locked.workflow.move_job(locked.job, outcome.state, description)
    if outcome.action is Action.RECORD:
        assert outcome.state is not None
        locked.workflow.record(locked.job, outcome.state, {**(description or {}), "ignored": True})
    return None


def _finish(locked: LockedJob, outcome: Outcome, description: dict[str, Any] | None, work_directory: str) -> Owed:
    """Write ``outcome``; once the job moved, unless the workflow was aborted, refresh the
    workflow status and start what follows."""
    cause = _apply(locked, outcome, description)
    if cause is None or locked.aborted:
        return Owed()
    locked.workflow.refresh_status(cause)
    return advance(locked.workflow, work_directory)


def job_completed(session: Session, message: messages.JobCompleted, work_directory: str) -> Owed:
    """A completion wins over error/stopped (the job did run) unless the workflow was aborted;
    a second completion changes nothing. For a live job, a completion naming its worker
    (``instance_id``, ``host_ip``, ``ports``) is the worker manager's report: it fills the live
    worker and may let init/start orders go."""
    locked = lock_job(session, message.job_id)
    job = locked.job
    if job.is_live and live.reports_worker(message.parameters):
        live.worker_reported(locked.workflow, job, message.parameters)
        log.info("live worker reported")
        return Owed() if locked.aborted else live.send_due(locked.workflow)
    outcome = _outcome(locked, Event.COMPLETED)
    if outcome.action is Action.DUPLICATE:
        log.info("duplicate completion ignored")
    elif outcome.action is Action.MOVE:
        if message.destination_paths:
            outputs = {"id": "destination_paths", "type": "array_of_strings", "value": message.destination_paths}
            locked.workflow.set_parameters(job, [*job.parameters, outputs])
        if message.parameters:
            locked.workflow.workflow.parameters = [*locked.workflow.workflow.parameters, *message.parameters]
        log.info("job completed")
    return _finish(locked, outcome, None, work_directory)


def _automatic_resends(session: Session, job_id: int) -> int:
    return session.scalar(
        select(func.count())
        .select_from(JobStatus)
        .where(JobStatus.job_id == job_id, JobStatus.description.contains({"automatic": True}))
    )


@dataclass(frozen=True)
class BusyResend:
    """How StepFlow answers the SDK's "another job is already in progress": the order is sent
    again after ``backoff`` seconds, doubling each time, at most ``limit`` times."""

    limit: int = 0
    backoff: float = 0.0

    @classmethod
    def of(cls, settings: Settings) -> BusyResend:
        return cls(settings.busy_resend_max, settings.busy_resend_backoff)

    def delay(self, attempt: int) -> timedelta:
        return timedelta(seconds=self.backoff * 2 ** (attempt - 1))


def _send_again(locked: LockedJob, reason: str, busy: BusyResend) -> bool:
    """Send the job's order again after the backoff (by the clock, as an undispatched job whose
    ``send_after`` came), recorded as an automatic ``retrying`` row; False past ``busy.limit``."""
    job = locked.job
    attempt = _automatic_resends(locked.workflow.session, job.id) + 1
    if attempt > busy.limit:
        return False
    locked.workflow.unmark(job, send_after=utcnow() + busy.delay(attempt))
    locked.workflow.move_job(job, JobState.RETRYING, {"message": reason, "automatic": True, "attempt": attempt})
    log.info("order to be sent again", reason=reason, attempt=attempt, after=job.send_after.isoformat())
    return True


def job_failed(
    session: Session, job_id: int, description: str, work_directory: str, busy: BusyResend = BusyResend()
) -> Owed:
    """An active job goes to ``error``; on a finished job the message is history only.

    The SDK's "another job is already in progress" answer is not the job's error (the job never
    ran): the same order is sent again after a backoff (by the clock, as an undispatched
    job whose ``send_after`` came), up to ``busy.limit`` times, each recorded as an automatic
    ``retrying`` row. Sent at once, it would meet the same busy worker again.
    """
    locked = lock_job(session, job_id)
    event = _ERROR_EVENTS.get(description, Event.ERROR)
    if event is Event.OTHER_JOB:
        log.info("stop answer from a worker not running the job ignored")
    outcome = _unless_resent(locked, _outcome(locked, event), description, busy)
    if outcome is None:
        return Owed()
    if outcome.action is Action.DUPLICATE:
        log.info("duplicate error ignored")
    elif outcome.action is Action.MOVE:
        log.warning("job error", message=description)
    return _finish(locked, outcome, {"message": description}, work_directory)


def job_progression(session: Session, message: messages.JobProgression, work_directory: str) -> Owed:
    """Record the progression once; a queued job becomes ``processing``."""
    locked = lock_job(session, message.job_id)
    job = locked.job
    inserted = session.scalar(
        insert(Progression)
        .values(
            job_id=job.id,
            reported_at=messages.worker_datetime(message.datetime),
            docker_container_id=message.docker_container_id,
            progression=message.progression,
        )
        .on_conflict_do_nothing(constraint="uq_progressions_job_id")
        .returning(Progression.id)
    )
    if inserted is not None:
        locked.workflow.tell(JOB_PROGRESSION, job_ref(job), progression=message.progression)
    if inserted is None or _apply(locked, _outcome(locked, Event.PROGRESSION)) is None:
        return Owed()
    return advance(locked.workflow, work_directory)


def job_stopped(session: Session, message: messages.JobStopped, work_directory: str) -> Owed:
    """An active job becomes ``stopped`` (final: its step is not relaunched, fix Q3); a live
    job stops from any unfinished state and its worker is deleted."""
    locked = lock_job(session, message.job_id)
    outcome = _outcome(locked, Event.STOPPED)
    owed = _finish(locked, outcome, None, work_directory)
    if outcome.action is Action.MOVE and locked.job.is_live:
        owed.add(live.deleted(locked.workflow, locked.job))
    return owed


def _still(session: Session, job_id: int, selected: Select[tuple[int]]) -> LockedJob | None:
    """The job locked, if ``selected`` still selects it (news may have arrived since the sweep)."""
    try:
        locked = lock_job(session, job_id)
    except UnknownJob:
        return None
    return locked if session.scalar(selected.where(Job.id == job_id)) is not None else None


def _unless_resent(locked: LockedJob, outcome: Outcome, reason: str, busy: BusyResend) -> Outcome | None:
    """None once a ``RESEND`` outcome sent the job's order again; past ``busy.limit``, the outcome
    of its ``otherwise`` event; any other outcome as it is."""
    if outcome.action is not Action.RESEND:
        return outcome
    if _send_again(locked, reason, busy):
        return None
    assert outcome.otherwise is not None
    return _outcome(locked, outcome.otherwise)


def _give_up(locked: LockedJob, outcome: Outcome, reason: str, work_directory: str) -> Owed:
    """The job's worker will not answer: ``error``, or ``stopped`` in an aborted workflow, whose
    running jobs were told to stop (ours.md §3.5)."""
    if outcome.action is Action.MOVE:
        log.warning("running job given up", reason=reason, state=outcome.state)
    return _finish(locked, outcome, {"message": reason}, work_directory)


def lease_expired(session: Session, job_id: int, silent: Select[tuple[int]], work_directory: str) -> Owed:
    """Give up a running job whose worker went silent (``silent`` selects such jobs)."""
    locked = _still(session, job_id, silent)
    return Owed() if locked is None else _give_up(locked, _outcome(locked, Event.GIVEN_UP), NO_NEWS, work_directory)


def job_abandoned(
    session: Session, job_id: int, abandoned: Select[tuple[int]], work_directory: str, busy: BusyResend
) -> Owed:
    """A running job its worker moved on from without answering (``abandoned`` selects such
    jobs): its order is sent again like a busy worker's refusal (bounded), then it fails."""
    locked = _still(session, job_id, abandoned)
    if locked is None:
        return Owed()
    outcome = _unless_resent(locked, _outcome(locked, Event.MOVED_ON), MOVED_ON, busy)
    return Owed() if outcome is None else _give_up(locked, outcome, MOVED_ON, work_directory)


def notification_done(session: Session, job_id: int, error: str | None, work_directory: str) -> Owed:
    """A notification job ran: it completes, or fails with ``error``. Nothing happens to a job
    that no longer waits (stopped by an abort meanwhile, or already recorded)."""
    try:
        locked = lock_job(session, job_id)
    except UnknownJob:
        log.info("notification of a deleted workflow ignored")
        return Owed()
    if error is None:
        return _finish(locked, _outcome(locked, Event.NOTIFICATION_SENT), None, work_directory)
    outcome = _outcome(locked, Event.NOTIFICATION_FAILED)
    if outcome.action is Action.MOVE:
        log.warning("notification failed", message=error)
    return _finish(locked, outcome, {"message": error}, work_directory)


def worker_created(session: Session, queue_name: str, instance_id: str | None) -> Owed | None:
    """The worker of the live job with this ``direct_messaging_queue_name`` announced itself:
    it is dated and its ``instance_id`` kept, the job is ``ready_to_init`` and gets
    ``init_process`` when it can. None when no live job has that queue name (an ordinary
    worker starting: expected noise)."""
    job_id = session.scalar(select(LiveWorker.job_id).where(LiveWorker.direct_messaging_queue_name == queue_name))
    if job_id is None:
        return None
    locked = lock_job(session, job_id)
    live.worker_announced(locked.workflow, locked.job, instance_id)
    return _live_stage(locked, JobState.READY_TO_INIT)


def live_job_reported(session: Session, job_id: int, state: str) -> Owed | None:
    """``worker_initialized`` (``ready_to_start``), ``worker_started`` and ``worker_updated``
    (``processing``) for a live job: it moves forward, never back, so a redelivery changes
    nothing. None for a job that is not live (expected noise); raises ``UnknownJob``."""
    locked = lock_job(session, job_id)
    if not locked.job.is_live:
        return None
    return _live_stage(locked, state)


def _live_stage(locked: LockedJob, state: str) -> Owed:
    """A live job's worker reports ``state``: the job moves forward (history only in an aborted
    workflow); unless aborted, the orders live jobs wait for go."""
    _apply(locked, _outcome(locked, LIVE_REPORTS[JobState(state)]))
    return Owed() if locked.aborted else live.send_due(locked.workflow)
