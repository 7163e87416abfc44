"""Job answers decided in batches: each answer queue's decision, and a batch in one transaction.

The bridge decides the job answers (``job_completed``, ``job_error``, ``job_progression``,
``job_stopped``, ``job_queue_not_found``) that one read of its socket brings, as one batch,
through :class:`JobAnswers`. The batch is decided in one transaction: the workflows of all its
jobs are locked at once, in id order (so two batches never deadlock), each answer is applied in
arrival order under that lock (:mod:`stepflow.orchestration.answers`), the transaction commits,
and everything the batch owes (the orders of the steps that became startable) is handed to
the process's courier, which sends it on its own thread with one pipelined publish and one
confirm wait, while the next batch is decided. A lone answer is a batch of one: no waiting
for company. Under load, answers pile up while a batch is decided, so the next batch is
bigger and each answer costs less.

If the batch's transaction fails, nothing of it was committed: each answer is then decided
alone, in its own transaction, so one bad answer neither fails nor delays the others; an
answer that fails alone too is reported unsettled (the bridge rejects it into its queue's
retry loop, and dead-letters it after too many rounds). Every decision is idempotent, so
deciding an answer again after a crash changes nothing.
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
from stepflow.wire.orders import JobOrder
from stepflow.wire.topology import JOB_COMPLETED, JOB_ERROR, JOB_PROGRESSION, JOB_QUEUE_NOT_FOUND, JOB_STOPPED

log = structlog.get_logger(__name__)

Answer = tuple[str, Any]
"""One job answer: the queue it came from, and its message (decoded, or its builtins)."""


@dataclass(frozen=True)
class Decision:
    """How the answers of one queue are decided: the message's type, and what it does to its
    job under the workflow lock (given the session, the decoded message and the resources)."""

    type: type[Any]
    decide: Callable[[Session, Any, Resources], Owed]


def _job_error(session: Session, message: messages.JobError, resources: Resources) -> Owed:
    if message.job_id is None:  # the bridge acks these as noise; a hand-over may still hold one
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
    queue, message = answer
    wanted = DECISIONS[queue].type
    return queue, message if isinstance(message, wanted) else msgspec.convert(message, wanted)


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
    queue, message = _decode(answer)
    log.warning("message for an unknown job acked", queue=queue, job_id=message.job_id)
    if queue == JOB_QUEUE_NOT_FOUND:
        dead_letter(resources.dead_letters, msgspec.json.encode(message), "unknown job", JOB_QUEUE_NOT_FOUND)


Send = Callable[[Owed], object]
"""Sends what a committed transaction owes (``Resources.send_owed``, or its courier's ``send``)."""


def _after_commit(
    resources: Resources, batch: Sequence[Answer], owed: Owed, unknown: Sequence[int], send: Send
) -> None:
    send(owed)
    for index in unknown:
        _unknown(resources, batch[index])


def decide(resources: Resources, batch: Sequence[Answer]) -> None:
    """Decide ``batch`` in one transaction, then send what it owes; raises if it fails."""
    owed, unknown = _decide_all(resources, batch)
    _after_commit(resources, batch, owed, unknown, resources.send_owed)


def decide_batch(resources: Resources, batch: Sequence[Answer], send: Send | None = None) -> list[bool]:
    """Decide ``batch`` (in one transaction, else each answer alone); for each answer, whether
    it is settled (its effect committed). What the committed answers owe goes to ``send``
    (by default ``resources.send_owed``: sent before this returns); what the broker did not
    confirm is the clock's to send again."""
    send = send or resources.send_owed
    try:
        owed, unknown = _decide_all(resources, batch)
    except Exception:
        if len(batch) == 1:
            log.exception("job answer failed", queue=batch[0][0])
            return [False]
        log.exception("batch of job answers failed, deciding each alone", size=len(batch))
        return [decide_batch(resources, [answer], send)[0] for answer in batch]
    try:
        _after_commit(resources, batch, owed, unknown, send)
    except Exception:  # committed: the clock sends again what was not confirmed
        log.exception("sending what a batch of job answers owes failed", size=len(batch))
    return [True] * len(batch)


class JobAnswers:
    """The bridge's decider of job answers (``stepflow.wire.bridge.Decider``), bound to the
    process's resources; ``name`` labels its deliveries in the metrics. What a batch owes goes
    to the resources' courier: the bridge acks the batch once it is committed and decides the
    next one while the courier sends (``stepflow.orchestration.outbox.Courier``)."""

    name = "job_answers"

    def __init__(self, resources: Resources) -> None:
        self.resources = resources

    def __call__(self, batch: Sequence[Answer]) -> list[bool]:
        return decide_batch(self.resources, batch, self.resources.courier.send)
