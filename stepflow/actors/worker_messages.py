"""Actors for the workers' own events (mcai-protocol.md §6), one transaction each, idempotent.

- ``worker_discovery`` → the worker definition (by queue name and version) is stored or refreshed;
- ``worker_status`` → the worker's status row (activity, current job) is stored or refreshed;
- ``worker_terminated`` → its status becomes ``Terminated`` (and its live worker's
  ``termination_date`` is set, as for ``{"job_id"}`` of a live job);
- ``worker_created`` / ``worker_initialized`` / ``worker_started`` / ``worker_updated`` drive
  live jobs (``transitions``, engine.md §10);
- ``worker_created`` from an ordinary worker, and ``worker_initialized`` / ``worker_started`` /
  ``worker_updated`` for an unknown or non-live job, are expected traffic: logged and acked,
  never a retry loop (ours.md §1 rule 3).

A body the bridge validated but that cannot be stored (a blank ``label``, no ``instance_id``…)
is a permanent failure: dead-lettered with the reason (ours.md §3.8).

The catch-all queues (``job_response_not_found``, ``worker_response_not_found``,
``direct_messaging_not_found``) have actors of their name that log and count what nobody was
bound for, with its routing key (and, for direct messages, the addressing headers).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import structlog
from sqlalchemy.orm import Session

from stepflow.orchestration import answers
from stepflow.resources import Resources
from stepflow.orchestration.outbox import Owed
from stepflow.engine.live import announced_queue_name
from stepflow.engine.states import JobState
from stepflow.wire.dead_letters import dead_letter
from stepflow.wire.topology import (
    DIRECT_MESSAGING_NOT_FOUND,
    JOB_RESPONSE_NOT_FOUND,
    WORKER_CREATED,
    WORKER_DISCOVERY,
    WORKER_INITIALIZED,
    WORKER_RESPONSE_NOT_FOUND,
    WORKER_STARTED,
    WORKER_STATUS,
    WORKER_TERMINATED,
    WORKER_UPDATED,
)
from stepflow.workers import (
    InvalidWorkerPayload,
    terminate_live_workers,
    terminate_worker_status,
    upsert_worker_definition,
    upsert_worker_status,
)

log = structlog.get_logger(__name__)

MAX_JOB_ID = 2**31 - 1

NOISE: Counter[str] = Counter()
"""Expected noise acked by this process, by queue (``worker_created`` of ordinary workers…)."""
UNROUTABLE: Counter[str] = Counter()
"""Messages consumed from the catch-all queues by this process, by queue."""


def _store(resources: Resources, queue: str, payload: Mapping[str, Any], change: Callable[[Session], Any]) -> bool:
    """Run ``change`` in one transaction; an unstorable payload is dead-lettered (False)."""
    try:
        with resources.transaction() as session:
            change(session)
        return True
    except InvalidWorkerPayload as error:
        reason = f"invalid worker message: {msgspec.json.encode(error.errors).decode()}"
        dead_letter(resources.dead_letters, msgspec.json.encode(payload), reason, queue)
        return False


def worker_discovery(resources: Resources, payload: dict[str, Any]) -> None:
    """A worker description: store its definition, or refresh the one of that queue and version."""
    if _store(resources, WORKER_DISCOVERY, payload, lambda session: upsert_worker_definition(session, payload)):
        log.info("worker definition stored", queue_name=payload.get("queue_name"), version=payload.get("version"))


def _announced_queue_name(payload: Mapping[str, Any]) -> str:
    """The live job queue name a worker description stands for ("" when it names none)."""
    name = payload.get("direct_messaging_queue_name")
    return announced_queue_name(name) if isinstance(name, str) else ""


def _drive_live(resources: Resources, queue: str, change: Callable[[Session], Owed | None], **context: Any) -> None:
    """Apply a worker report to a live job in one transaction, then send what it owes; a
    report for no live job (``change`` returns None, or an unknown job) is counted noise."""
    try:
        with resources.transaction() as session:
            owed = change(session)
    except answers.UnknownJob:
        owed = None
    finally:
        structlog.contextvars.clear_contextvars()  # set by the lock; threads are reused
    if owed is None:
        NOISE[queue] += 1
        log.info(f"{queue} for no live job acked", **context)
        return
    resources.send_owed(owed)


def worker_created(resources: Resources, payload: dict[str, Any]) -> None:
    """A worker started. The worker of a live job is matched by its direct messaging queue
    name; for an ordinary worker there is nothing to do (its definition comes with
    ``worker_discovery``)."""
    instance_id = payload.get("instance_id") if isinstance(payload.get("instance_id"), str) else None
    queue_name = _announced_queue_name(payload)
    _drive_live(resources, 
        WORKER_CREATED,
        lambda session: answers.worker_created(session, queue_name, instance_id),
        queue_name=payload.get("queue_name"),
        instance_id=instance_id,
        direct_messaging_queue_name=payload.get("direct_messaging_queue_name"),
    )


def worker_status(resources: Resources, payload: dict[str, Any]) -> None:
    """The last status of a worker instance: activity and current job."""
    _store(resources, WORKER_STATUS, payload, lambda session: upsert_worker_status(session, payload))


def worker_terminated(resources: Resources, payload: dict[str, Any]) -> None:
    """A worker stopped (``stop_worker`` or SIGINT): its status becomes ``Terminated``, and the
    live worker it may be is dated; ``{"job_id"}`` ends the live worker of that job."""
    job_id = payload.get("job_id")
    if isinstance(job_id, int):
        with resources.transaction() as session:
            ended = terminate_live_workers(session, job_id) if job_id <= MAX_JOB_ID else 0
        log.info("live worker terminated", job_id=job_id, count=ended)
        return
    queue_name = _announced_queue_name(payload)

    def terminate(session: Session) -> None:
        terminate_worker_status(session, payload)
        terminate_live_workers(session, direct_messaging_queue_name=queue_name)

    if _store(resources, WORKER_TERMINATED, payload, terminate):
        log.info("worker terminated", instance_id=payload.get("instance_id"), queue_name=payload.get("queue_name"))


def _live_job_report(resources: Resources, queue: str, payload: Mapping[str, Any], state: str) -> None:
    job_id = payload.get("job_id")
    if not isinstance(job_id, int) or job_id > MAX_JOB_ID:
        NOISE[queue] += 1
        log.info(f"{queue} for no live job acked", job_id=job_id)
        return
    _drive_live(resources, 
        queue,
        lambda session: answers.live_job_reported(session, job_id, state),
        job_id=job_id,
        status=payload.get("status"),
    )


def worker_initialized(resources: Resources, payload: dict[str, Any]) -> None:
    """The live job's worker answered ``init_process``: ``ready_to_start``, then ``start_process``."""
    _live_job_report(resources, WORKER_INITIALIZED, payload, JobState.READY_TO_START)


def worker_started(resources: Resources, payload: dict[str, Any]) -> None:
    """The live job's worker answered ``start_process``: ``processing``."""
    _live_job_report(resources, WORKER_STARTED, payload, JobState.PROCESSING)


def worker_updated(resources: Resources, payload: dict[str, Any]) -> None:
    """The live job's worker applied ``update_process``: ``processing`` again."""
    _live_job_report(resources, WORKER_UPDATED, payload, JobState.PROCESSING)


def _unroutable(queue: str, delivery: Mapping[str, Any], event: str = "unroutable message acked") -> None:
    """Log and count what a catch-all queue received (``delivery`` is the bridge's
    ``{"routing_key", "headers", "body"}``)."""
    UNROUTABLE[queue] += 1
    body = msgspec.json.encode(delivery.get("body"))[:500].decode(errors="replace")
    fields = {"queue": queue, "count": UNROUTABLE[queue], "routing_key": delivery.get("routing_key"), "body": body}
    if queue == DIRECT_MESSAGING_NOT_FOUND:
        fields["headers"] = delivery.get("headers")
    log.warning(event, **fields)


def job_response_not_found(resources: Resources, delivery: dict[str, Any]) -> None:
    """A message published on ``job_response`` with a routing key nobody is bound for."""
    _unroutable(JOB_RESPONSE_NOT_FOUND, delivery)


def worker_response_not_found(resources: Resources, delivery: dict[str, Any]) -> None:
    """A message published on ``worker_response`` with a routing key nobody is bound for
    (``worker_black_list`` of SDK 2.x, for one)."""
    _unroutable(WORKER_RESPONSE_NOT_FOUND, delivery)


def direct_messaging_not_found(resources: Resources, delivery: dict[str, Any]) -> None:
    """A direct message no worker was bound for: its worker is gone (a ``stop_process`` to a
    killed instance), or no worker runs at all (a status broadcast, logged at info level)."""
    body = delivery.get("body")
    if isinstance(body, Mapping) and body.get("type") == "status":
        UNROUTABLE[DIRECT_MESSAGING_NOT_FOUND] += 1
        log.info("status broadcast reached no worker")
        return
    _unroutable(DIRECT_MESSAGING_NOT_FOUND, delivery, "direct message reached no worker")


ACTORS: dict[str, Callable[[Resources, dict[str, Any]], None]] = {
    WORKER_CREATED: worker_created,
    WORKER_DISCOVERY: worker_discovery,
    WORKER_INITIALIZED: worker_initialized,
    WORKER_STARTED: worker_started,
    WORKER_STATUS: worker_status,
    WORKER_TERMINATED: worker_terminated,
    WORKER_UPDATED: worker_updated,
    JOB_RESPONSE_NOT_FOUND: job_response_not_found,
    WORKER_RESPONSE_NOT_FOUND: worker_response_not_found,
    DIRECT_MESSAGING_NOT_FOUND: direct_messaging_not_found,
}
"""The worker-event and catch-all actors, by name (= the queue the bridge consumes for each);
each takes the process's resources first (``stepflow.actors.declare``)."""
