"""Running jobs whose worker will not answer (ours.md §3.11), settled by the clock.

- **silent**: no news (progression, or worker status naming the job) for longer than the
  queue's lease: the job fails "no news from worker";
- **abandoned**: the worker that took the job has since reported a status without it: its
  order is sent again (bounded like a busy worker's refusal), then the job fails.

Each job is settled in its own transaction under its workflow's lock, after checking again
that it still qualifies, so a worker message racing the sweep wins or loses cleanly; what the
change owes (the steps it unblocks) is sent after commit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Select
from sqlalchemy.orm import Session, sessionmaker

from stepflow.orchestration.outbox import Owed
from stepflow.orchestration.answers import BusyResend, job_abandoned, lease_expired
from stepflow.orchestration.worker_news import abandoned_jobs, silent_jobs
from stepflow.models.base import utcnow

log = structlog.get_logger(__name__)

Settle = Callable[[Session, int, Select[tuple[int]]], Owed]


@dataclass(frozen=True)
class Leases:
    """How long a worker may stay silent on a job (``default`` or per queue), and how long after
    a job's last news a worker status without it means the worker moved on (``grace``)."""

    default: float
    per_queue: Mapping[str, float]
    grace: float
    busy: BusyResend


def _settle(
    sessions: sessionmaker[Session],
    send: Callable[[Owed], Any],
    selected: Select[tuple[int]],
    settle: Settle,
    limit: int,
) -> int:
    with sessions() as session:
        job_ids = list(session.scalars(selected.limit(limit)))
    for job_id in job_ids:
        with structlog.contextvars.bound_contextvars(job_id=job_id):
            with sessions() as session, session.begin():
                owed = settle(session, job_id, selected)
            send(owed)
    return len(job_ids)


def settle_unanswered_jobs(
    sessions: sessionmaker[Session],
    send: Callable[[Owed], Any],
    leases: Leases,
    work_directory: str,
    limit: int = 500,
) -> tuple[int, int]:
    """Settle up to ``limit`` silent and ``limit`` abandoned jobs; returns how many of each."""
    silent = _settle(
        sessions,
        send,
        silent_jobs(utcnow(), leases.default, leases.per_queue),
        lambda session, job_id, selected: lease_expired(session, job_id, selected, work_directory),
        limit,
    )
    abandoned = _settle(
        sessions,
        send,
        abandoned_jobs(leases.grace),
        lambda session, job_id, selected: job_abandoned(session, job_id, selected, work_directory, leases.busy),
        limit,
    )
    return silent, abandoned
