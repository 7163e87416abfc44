"""Actors for the workers' own events (mcai-protocol.md §6), one transaction each, idempotent.

- ``worker_discovery`` → the worker definition (by queue name and version) is stored or refreshed;
- ``worker_status`` → the worker's status row (activity, current job) is stored or refreshed;
- ``worker_terminated`` → its status becomes ``Terminated``;
- ``worker_created`` from an ordinary worker, and ``worker_initialized`` / ``worker_started`` /
  ``worker_updated`` for an unknown or non-live job, are expected traffic: logged and acked,
  never a retry loop (ours.md §1 rule 3). Live jobs are handled by a later change.

A body the bridge validated but that cannot be stored (a blank ``label``, no ``instance_id``…)
is a permanent failure: dead-lettered with the reason (ours.md §3.8).

The catch-all queues (``job_response_not_found``, ``worker_response_not_found``) have actors of
their name that log and count what nobody was bound for.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import dramatiq
import msgspec
import structlog
from sqlalchemy.orm import Session

from stepflow.actors import runtime
from stepflow.models import Job
from stepflow.wire.dead_letters import dead_letter
from stepflow.wire.topology import (
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
    terminate_worker_status,
    upsert_worker_definition,
    upsert_worker_status,
)

log = structlog.get_logger(__name__)

WORKERS_QUEUE = "stepflow.workers"
MAX_JOB_ID = 2**31 - 1

NOISE: Counter[str] = Counter()
"""Expected noise acked by this process, by queue (``worker_created`` of ordinary workers…)."""
UNROUTABLE: Counter[str] = Counter()
"""Messages consumed from the catch-all queues by this process, by queue."""


def _store(queue: str, payload: Mapping[str, Any], change: Callable[[Session], Any]) -> bool:
    """Run ``change`` in one transaction; an unstorable payload is dead-lettered (False)."""
    try:
        with runtime.transaction() as session:
            change(session)
        return True
    except InvalidWorkerPayload as error:
        reason = f"invalid worker message: {msgspec.json.encode(error.errors).decode()}"
        dead_letter(runtime.dead_letter_publisher(), msgspec.json.encode(payload), reason, queue)
        return False


@dramatiq.actor(queue_name=WORKERS_QUEUE)
def worker_discovery(payload: dict[str, Any]) -> None:
    """A worker description: store its definition, or refresh the one of that queue and version."""
    if _store(WORKER_DISCOVERY, payload, lambda session: upsert_worker_definition(session, payload)):
        log.info("worker definition stored", queue_name=payload.get("queue_name"), version=payload.get("version"))


@dramatiq.actor(queue_name=WORKERS_QUEUE)
def worker_created(payload: dict[str, Any]) -> None:
    """A worker started. For an ordinary worker there is nothing to do (its definition comes
    with ``worker_discovery``); live workers are matched by a later change."""
    NOISE[WORKER_CREATED] += 1
    log.info(
        "worker_created acked",
        queue_name=payload.get("queue_name"),
        instance_id=payload.get("instance_id"),
        direct_messaging_queue_name=payload.get("direct_messaging_queue_name"),
    )


@dramatiq.actor(queue_name=WORKERS_QUEUE)
def worker_status(payload: dict[str, Any]) -> None:
    """The last status of a worker instance: activity and current job."""
    _store(WORKER_STATUS, payload, lambda session: upsert_worker_status(session, payload))


@dramatiq.actor(queue_name=WORKERS_QUEUE)
def worker_terminated(payload: dict[str, Any]) -> None:
    """A worker stopped (``stop_worker`` or SIGINT): its status becomes ``Terminated``."""
    if _store(WORKER_TERMINATED, payload, lambda session: terminate_worker_status(session, payload)):
        log.info("worker terminated", instance_id=payload.get("instance_id"), queue_name=payload.get("queue_name"))


def _live_job_status(queue: str, payload: Mapping[str, Any]) -> None:
    """``worker_initialized`` / ``worker_started`` / ``worker_updated``: only live jobs have
    them; the live workflow stepping comes later, so every one is logged and acked."""
    job_id = payload.get("job_id")
    with runtime.transaction() as session:
        job = session.get(Job, job_id) if isinstance(job_id, int) and job_id <= MAX_JOB_ID else None
        found, live = job is not None, bool(job is not None and job.is_live)
    NOISE[queue] += 1
    if not found:
        log.warning(f"{queue} for an unknown job acked", job_id=job_id, status=payload.get("status"))
    elif not live:
        log.warning(f"{queue} for a non-live job acked", job_id=job_id, status=payload.get("status"))
    else:
        log.info(f"{queue} for a live job acked (live workflows not handled yet)", job_id=job_id)


@dramatiq.actor(queue_name=WORKERS_QUEUE)
def worker_initialized(payload: dict[str, Any]) -> None:
    _live_job_status(WORKER_INITIALIZED, payload)


@dramatiq.actor(queue_name=WORKERS_QUEUE)
def worker_started(payload: dict[str, Any]) -> None:
    _live_job_status(WORKER_STARTED, payload)


@dramatiq.actor(queue_name=WORKERS_QUEUE)
def worker_updated(payload: dict[str, Any]) -> None:
    _live_job_status(WORKER_UPDATED, payload)


def _unroutable(queue: str, payload: Any) -> None:
    UNROUTABLE[queue] += 1
    body = msgspec.json.encode(payload)[:500].decode(errors="replace")
    log.warning("unroutable message acked", queue=queue, count=UNROUTABLE[queue], body=body)


@dramatiq.actor(queue_name=WORKERS_QUEUE)
def job_response_not_found(payload: Any) -> None:
    """A message published on ``job_response`` with a routing key nobody is bound for."""
    _unroutable(JOB_RESPONSE_NOT_FOUND, payload)


@dramatiq.actor(queue_name=WORKERS_QUEUE)
def worker_response_not_found(payload: Any) -> None:
    """A message published on ``worker_response`` with a routing key nobody is bound for
    (``worker_black_list`` of SDK 2.x, for one)."""
    _unroutable(WORKER_RESPONSE_NOT_FOUND, payload)


def worker_bridge_handlers() -> dict[str, dramatiq.Actor[Any, Any]]:
    """The worker event queues and the catch-alls, for ``job_messages.bridge_handlers``."""
    return {
        WORKER_CREATED: worker_created,
        WORKER_DISCOVERY: worker_discovery,
        WORKER_INITIALIZED: worker_initialized,
        WORKER_STARTED: worker_started,
        WORKER_STATUS: worker_status,
        WORKER_TERMINATED: worker_terminated,
        WORKER_UPDATED: worker_updated,
        JOB_RESPONSE_NOT_FOUND: job_response_not_found,
        WORKER_RESPONSE_NOT_FOUND: worker_response_not_found,
    }
