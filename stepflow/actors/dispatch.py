"""Sending job orders after commit, and finding the ones that were never confirmed.

The jobs table is the outbox of job orders: a job is inserted with ``dispatched_at`` NULL in
the advance transaction; after commit its order is published and the confirmed ids are
marked in one ``UPDATE``. A crash in between delays an order (the clock re-sends it), never
loses it; a duplicate order is harmless because completion is idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from stepflow.models import Job
from stepflow.models.base import utcnow
from stepflow.wire.orders import JobOrder
from stepflow.wire.publisher import ConfirmingPublisher, publish_orders


def dispatch(sessions: sessionmaker[Session], publisher: ConfirmingPublisher, orders: Sequence[JobOrder]) -> int:
    """Publish ``orders`` and mark the confirmed ones dispatched; returns how many."""
    if not orders:
        return 0
    confirmed = publish_orders(publisher, orders)
    if confirmed:
        with sessions() as session, session.begin():
            session.execute(update(Job).where(Job.id.in_(confirmed)).values(dispatched_at=utcnow()))
    return len(confirmed)


def undispatched_orders(session: Session, older_than: float, limit: int = 500) -> list[JobOrder]:
    """Orders of queued jobs still unconfirmed ``older_than`` seconds after their creation."""
    cutoff = utcnow() - timedelta(seconds=older_than)
    rows = session.execute(
        select(Job.id, Job.name, Job.step_id, Job.parameters)
        .where(Job.dispatched_at.is_(None), Job.state == "queued", Job.inserted_at < cutoff)
        .order_by(Job.id)
        .limit(limit)
    )
    return [JobOrder(job_id, name, step_id, parameters) for job_id, name, step_id, parameters in rows]
