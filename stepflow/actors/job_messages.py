"""Actors for worker messages handed over by the bridge (one transaction each).

Each takes the worker's JSON payload (already validated by the bridge), applies it under the
workflow lock, commits, then publishes the orders of any steps that became startable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq
import msgspec
import structlog
from sqlalchemy.orm import Session

from stepflow.actors import runtime, transitions
from stepflow.actors.dispatch import Owed
from stepflow.wire import messages
from stepflow.wire.dead_letters import dead_letter
from stepflow.wire.topology import JOB_QUEUE_NOT_FOUND

log = structlog.get_logger(__name__)

JOBS_QUEUE = "stepflow.jobs"


def _apply(job_id: int, change: Callable[[Session, str], Owed]) -> bool:
    """Run ``change`` in one transaction, then dispatch; False when the job is unknown."""
    structlog.contextvars.bind_contextvars(job_id=job_id)
    try:
        with runtime.transaction() as session:
            owed = change(session, runtime.settings().workers_work_directory)
        runtime.send_owed(owed)
        return True
    except transitions.UnknownJob:
        log.warning("message for an unknown job acked")
        return False
    finally:
        # Worker threads are reused: the next message must not inherit this one's ids.
        structlog.contextvars.clear_contextvars()


@dramatiq.actor(queue_name=JOBS_QUEUE)
def job_completed(payload: dict[str, Any]) -> None:
    message = msgspec.convert(payload, messages.JobCompleted)
    _apply(message.job_id, lambda session, wd: transitions.job_completed(session, message, wd))


@dramatiq.actor(queue_name=JOBS_QUEUE)
def job_error(payload: dict[str, Any]) -> None:
    message = msgspec.convert(payload, messages.JobError)
    if message.job_id is None:
        log.info("job_error without job_id", message=message.description())
        return
    job_id, busy = message.job_id, transitions.BusyResend.of(runtime.settings())
    _apply(job_id, lambda session, wd: transitions.job_failed(session, job_id, message.description(), wd, busy))


@dramatiq.actor(queue_name=JOBS_QUEUE)
def job_progression(payload: dict[str, Any]) -> None:
    message = msgspec.convert(payload, messages.JobProgression)
    _apply(message.job_id, lambda session, wd: transitions.job_progression(session, message, wd))


@dramatiq.actor(queue_name=JOBS_QUEUE)
def job_stopped(payload: dict[str, Any]) -> None:
    message = msgspec.convert(payload, messages.JobStopped)
    _apply(message.job_id, lambda session, wd: transitions.job_stopped(session, message, wd))


@dramatiq.actor(queue_name=JOBS_QUEUE)
def job_queue_not_found(payload: dict[str, Any]) -> None:
    """An order no worker queue was bound for: its job fails; an unknown job is dead-lettered."""
    message = msgspec.convert(payload, messages.JobOrder)
    failure = transitions.QUEUE_NOT_FOUND_MESSAGE
    found = _apply(message.job_id, lambda session, wd: transitions.job_failed(session, message.job_id, failure, wd))
    if not found:
        dead_letter(runtime.dead_letter_publisher(), msgspec.json.encode(payload), "unknown job", JOB_QUEUE_NOT_FOUND)


def bridge_handlers() -> dict[str, dramatiq.Actor[Any, Any]]:
    """The actor the bridge hands each consumed queue's messages to (the job answers, the
    worker events and the catch-all queues)."""
    from stepflow.actors.worker_messages import worker_bridge_handlers

    return {
        "job_completed": job_completed,
        "job_error": job_error,
        "job_progression": job_progression,
        "job_stopped": job_stopped,
        JOB_QUEUE_NOT_FOUND: job_queue_not_found,
        **worker_bridge_handlers(),
    }
