"""Actors for the workers' job answers handed over by the bridge, decided in batches.

The bridge hands the job answers that arrive together to ``job_answers`` as one message of
``[queue, payload]`` pairs (payloads already validated). The batch is decided in one
transaction: the workflows of all its jobs are locked at once, in id order (so two batches
never deadlock), each answer is applied in arrival order under that lock
(``stepflow.orchestration.answers``), the transaction commits, and everything the batch owes
(the orders of the steps that became startable) is sent with one pipelined publish and one
confirm wait. A lone answer is a batch of one: no waiting for company.

If the batch's transaction fails, nothing of it was committed: each answer is then decided
alone, in its own transaction, so one bad answer neither fails nor delays the others; an
answer that fails alone too is handed over again by itself (the ``job_answers`` actor's own
retries then apply to it only). Every decision is idempotent, so deciding an answer again
after a crash changes nothing.

The per-queue actors (``job_completed``, ``job_error``, ...) take one payload each, as bridges
before batching handed them over; they decide it as a batch of one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog
from sqlalchemy.orm import Session

from stepflow.orchestration import answers
from stepflow.orchestration.locked_workflow import LockedWorkflow
from stepflow.orchestration.outbox import Owed
from stepflow.resources import Resources
from stepflow.wire import messages
from stepflow.wire.dead_letters import dead_letter
from stepflow.wire.handover import JOB_ANSWERS, actor_message
from stepflow.wire.orders import JobOrder
from stepflow.wire.topology import JOB_COMPLETED, JOB_ERROR, JOB_PROGRESSION, JOB_QUEUE_NOT_FOUND, JOB_STOPPED

log = structlog.get_logger(__name__)

Answer = tuple[str, dict[str, Any]]
"""One job answer: the queue it came from, and its payload."""


@dataclass(frozen=True)
class Decision:
    """How the answers of one queue are decided: the payload's type, and what it does to its
    job under the workflow lock (given the session, the decoded message and the resources)."""

    type: type[Any]
    decide: Callable[[Session, Any, Resources], Owed]


def _job_error(session: Session, message: messages.JobError, resources: Resources) -> Owed:
    if message.job_id is None:  # the bridge acks these as noise; older bridges handed them over
        log.info("job_error without job_id", message=message.description())
        return Owed()
    busy = answers.BusyResend.of(resources.settings)
    work_directory = resources.settings.workers_work_directory
    return answers.job_failed(session, message.job_id, message.description(), work_directory, busy)


def _queue_not_found(session: Session, message: JobOrder, resources: Resources) -> Owed:
    work_directory = resources.settings.workers_work_directory
    return answers.job_failed(session, message.job_id, answers.QUEUE_NOT_FOUND_MESSAGE, work_directory)


DECISIONS: dict[str, Decision] = {
    JOB_COMPLETED: Decision(
        messages.JobCompleted, lambda s, m, r: answers.job_completed(s, m, r.settings.workers_work_directory)
    ),
    JOB_ERROR: Decision(messages.JobError, _job_error),
    JOB_PROGRESSION: Decision(
        messages.JobProgression, lambda s, m, r: answers.job_progression(s, m, r.settings.workers_work_directory)
    ),
    JOB_STOPPED: Decision(
        messages.JobStopped, lambda s, m, r: answers.job_stopped(s, m, r.settings.workers_work_directory)
    ),
    JOB_QUEUE_NOT_FOUND: Decision(JobOrder, _queue_not_found),
}
"""Each job-answer queue → how its answers are decided."""


def _decode(answer: Answer) -> tuple[str, Any]:
    queue, payload = answer
    return queue, msgspec.convert(payload, DECISIONS[queue].type)


def _decide_all(resources: Resources, batch: Sequence[Answer]) -> tuple[Owed, list[int]]:
    """Decide ``batch`` in one transaction (committed when this returns): what it owes, and
    the indices of the answers whose job does not exist."""
    decoded = [_decode(answer) for answer in batch]
    owed, unknown = Owed(), []
    with resources.transaction() as session:
        LockedWorkflow.lock_jobs(session, [message.job_id for _, message in decoded if message.job_id is not None])
        for index, (queue, message) in enumerate(decoded):
            structlog.contextvars.bind_contextvars(job_id=message.job_id)
            try:
                owed.add(DECISIONS[queue].decide(session, message, resources))
            except answers.UnknownJob:
                unknown.append(index)
            finally:
                structlog.contextvars.clear_contextvars()
    return owed, unknown


def _unknown(resources: Resources, answer: Answer) -> None:
    """An answer for a job that does not exist (a deleted workflow): acked with a log line; a
    ``job_queue_not_found`` order of an unknown job is dead-lettered."""
    queue, payload = answer
    log.warning("message for an unknown job acked", queue=queue, job_id=payload.get("job_id"))
    if queue == JOB_QUEUE_NOT_FOUND:
        dead_letter(resources.dead_letters, msgspec.json.encode(payload), "unknown job", JOB_QUEUE_NOT_FOUND)


def _after_commit(resources: Resources, batch: Sequence[Answer], owed: Owed, unknown: Sequence[int]) -> None:
    resources.send_owed(owed)
    for index in unknown:
        _unknown(resources, batch[index])


def decide(resources: Resources, batch: Sequence[Answer]) -> None:
    """Decide ``batch`` in one transaction, then send what it owes; raises if it fails."""
    owed, unknown = _decide_all(resources, batch)
    _after_commit(resources, batch, owed, unknown)


def job_answers(resources: Resources, batch: list[list[Any]]) -> None:
    """The answers the bridge handed over together, as ``[queue, payload]`` pairs."""
    answers_ = [(queue, payload) for queue, payload in batch]
    try:
        owed, unknown = _decide_all(resources, answers_)
    except Exception:
        if len(answers_) == 1:
            raise  # Dramatiq's retries apply to it
        log.exception("batch of job answers failed, deciding each alone", size=len(answers_))
        for answer in answers_:
            try:
                decide(resources, [answer])
            except Exception:
                log.exception("job answer failed alone, handed over again by itself", queue=answer[0])
                resources.hand_over.send(actor_message(JOB_ANSWERS, [list(answer)]))
        return
    _after_commit(resources, answers_, owed, unknown)


def _one(queue: str) -> Callable[[Resources, dict[str, Any]], None]:
    def actor(resources: Resources, payload: dict[str, Any]) -> None:
        decide(resources, [(queue, payload)])

    actor.__name__ = actor.__qualname__ = queue
    actor.__doc__ = f"One ``{queue}`` answer, decided as a batch of one."
    return actor


ACTORS: dict[str, Callable[..., None]] = {
    JOB_ANSWERS.actor_name: job_answers,
    **{queue: _one(queue) for queue in DECISIONS},
}
"""The job-answer actors by name: ``job_answers`` (batches) and one per answer queue (named for
it); each takes the process's resources first (``stepflow.actors.declare``)."""
