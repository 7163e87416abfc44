"""The silence lease (ours.md §3.11): running jobs whose worker went silent are given up.

The clock runs :func:`give_up_silent_jobs` periodically. Each job is settled in its own
transaction under its workflow's lock, so a worker message racing the sweep wins or loses
cleanly, and what the change owes (the steps it unblocks) is sent after commit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import structlog
from sqlalchemy.orm import Session, sessionmaker

from stepflow.actors.dispatch import Owed
from stepflow.actors.transitions import lease_expired
from stepflow.models.base import utcnow
from stepflow.queries import silent_jobs

log = structlog.get_logger(__name__)


def give_up_silent_jobs(
    sessions: sessionmaker[Session],
    send: Callable[[Owed], Any],
    *,
    default_lease: float,
    leases: Mapping[str, float],
    work_directory: str,
    limit: int = 500,
) -> int:
    """Settle up to ``limit`` silent jobs; returns how many were found silent."""
    silent = silent_jobs(utcnow(), default_lease, leases)
    with sessions() as session:
        job_ids = list(session.scalars(silent.limit(limit)))
    for job_id in job_ids:
        with structlog.contextvars.bound_contextvars(job_id=job_id):
            with sessions() as session, session.begin():
                owed = lease_expired(session, job_id, silent, work_directory)
            send(owed)
    return len(job_ids)
