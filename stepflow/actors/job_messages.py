"""Actors for worker messages handed over by the bridge (one transaction each).

Each takes the worker's JSON payload (already validated by the bridge), applies it under the
workflow lock (``stepflow.orchestration.answers``), commits, then sends what the change owes
(the orders of any steps that became startable).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
import structlog
from sqlalchemy.orm import Session

from stepflow.orchestration import answers
from stepflow.orchestration.outbox import Owed
from stepflow.resources import Resources
from stepflow.wire import messages
from stepflow.wire.dead_letters import dead_letter
from stepflow.wire.topology import JOB_QUEUE_NOT_FOUND

log = structlog.get_logger(__name__)


def _apply(resources: Resources, job_id: int, change: Callable[[Session, str], Owed]) -> bool:
    """Run ``change`` in one transaction, then dispatch; False when the job is unknown."""
    structlog.contextvars.bind_contextvars(job_id=job_id)
    try:
        with resources.transaction() as session:
            owed = change(session, resources.settings.workers_work_directory)
        resources.send_owed(owed)
        return True
    except answers.UnknownJob:
        log.warning("message for an unknown job acked")
        return False
    finally:
        # Worker threads are reused: the next message must not inherit this one's ids.
        structlog.contextvars.clear_contextvars()


def job_completed(resources: Resources, payload: dict[str, Any]) -> None:
    message = msgspec.convert(payload, messages.JobCompleted)
    _apply(resources, message.job_id, lambda session, wd: answers.job_completed(session, message, wd))


def job_error(resources: Resources, payload: dict[str, Any]) -> None:
    message = msgspec.convert(payload, messages.JobError)
    if message.job_id is None:
        log.info("job_error without job_id", message=message.description())
        return
    job_id, busy = message.job_id, answers.BusyResend.of(resources.settings)
    _apply(resources, job_id, lambda session, wd: answers.job_failed(session, job_id, message.description(), wd, busy))


def job_progression(resources: Resources, payload: dict[str, Any]) -> None:
    message = msgspec.convert(payload, messages.JobProgression)
    _apply(resources, message.job_id, lambda session, wd: answers.job_progression(session, message, wd))


def job_stopped(resources: Resources, payload: dict[str, Any]) -> None:
    message = msgspec.convert(payload, messages.JobStopped)
    _apply(resources, message.job_id, lambda session, wd: answers.job_stopped(session, message, wd))


def job_queue_not_found(resources: Resources, payload: dict[str, Any]) -> None:
    """An order no worker queue was bound for: its job fails; an unknown job is dead-lettered."""
    message = msgspec.convert(payload, messages.JobOrder)
    failure = answers.QUEUE_NOT_FOUND_MESSAGE
    found = _apply(resources, message.job_id, lambda session, wd: answers.job_failed(session, message.job_id, failure, wd))
    if not found:
        body = msgspec.json.encode(payload)
        dead_letter(resources.dead_letters, body, "unknown job", JOB_QUEUE_NOT_FOUND)


ACTORS: dict[str, Callable[[Resources, dict[str, Any]], None]] = {
    "job_completed": job_completed,
    "job_error": job_error,
    "job_progression": job_progression,
    "job_stopped": job_stopped,
    "job_queue_not_found": job_queue_not_found,
}
"""The job-answer actors, by name (= the queue the bridge consumes for each); each takes the
process's resources first (``stepflow.actors.declare``)."""
