"""Reading workers for the API, and sending one worker an order through the outbox."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import anyio.to_thread
import structlog
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, sessionmaker

from stepflow.orchestration.outbox import Owed, owe_direct_message
from stepflow.api.workflows.events import OwedSender
from stepflow.models import LiveWorker

log = structlog.get_logger(__name__)

Row = TypeVar("Row")

BIGINT_MAX = 2**63 - 1


async def page_of(session: AsyncSession, query: Select[tuple[Row]], page: int, size: int) -> tuple[list[Row], int]:
    """One page of ``query`` (already filtered and ordered) and the count before paging."""
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    offset = page * size
    if offset > BIGINT_MAX:  # beyond any table: PostgreSQL would refuse the number
        return [], int(total or 0)
    rows = await session.scalars(query.offset(offset).limit(min(size, BIGINT_MAX)))
    return list(rows), int(total or 0)


def live_worker_filters(keys: Sequence[str]) -> list[ColumnElement[bool]]:
    """``initializing``, ``started``, ``terminated`` (api.md §7.4): present means on, ANDed."""
    filters: list[ColumnElement[bool]] = []
    not_terminated = LiveWorker.termination_date.is_(None)
    if "initializing" in keys:
        filters.append(
            and_(or_(func.cardinality(LiveWorker.ips) == 0, LiveWorker.creation_date.is_(None)), not_terminated)
        )
    if "started" in keys:
        filters.append(
            and_(func.cardinality(LiveWorker.ips) > 0, LiveWorker.creation_date.is_not(None), not_terminated)
        )
    if "terminated" in keys:
        filters.append(LiveWorker.termination_date.is_not(None))
    return filters


def worker_order(instance_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The direct message of ``PUT /workers/:id``: the body minus ``id``, to that one instance."""
    return {"headers": {"instance_id": instance_id}, "body": {k: v for k, v in body.items() if k != "id"}}


async def send_to_worker(
    sync_sessions: sessionmaker[Session], send_owed: OwedSender, instance_id: str, body: Mapping[str, Any]
) -> None:
    """Store the order in the outbox (committed), then send it; the clock re-sends on failure."""
    message = worker_order(instance_id, body)

    def store() -> int:
        with sync_sessions() as session, session.begin():
            return owe_direct_message(session, message)

    outbox_id = await anyio.to_thread.run_sync(store)
    try:
        await anyio.to_thread.run_sync(send_owed, Owed(direct_messages=[outbox_id]))
    except Exception as error:  # the broker is down: the clock sends it later
        log.warning("worker order left to the clock", instance_id=instance_id, error=str(error))
