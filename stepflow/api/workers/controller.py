"""Worker definitions, live workers and workers (api.md §7.3–§7.5).

Every route needs credentials (the ``principal`` dependency); none has object-level rights.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, get, post, route
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, sessionmaker

from stepflow.api.errors import ApiError, invalid, not_found
from stepflow.api.query import Page, Size
from stepflow.api.workers.service import BIGINT_MAX, live_worker_filters, page_of, send_to_worker
from stepflow.api.workers.views import live_worker_view, lost_before, worker_definition_view, worker_status_view
from stepflow.api.workflows.controller import json_object
from stepflow.api.workflows.events import OwedSender
from stepflow.models import LiveWorker, WorkerDefinition, WorkerStatus
from stepflow.models.base import utcnow
from stepflow.security import Principal
from stepflow.settings import Settings
from stepflow.workers import InvalidWorkerPayload, upsert_worker_definition_statement, worker_definition_values

# Worker definitions (§7.3)


@get("/worker_definitions")
async def list_worker_definitions(
    session: NamedDependency[AsyncSession], principal: NamedDependency[Principal], page: Page = 0, size: Size = 10
) -> dict[str, Any]:
    """Newest first (``inserted_at DESC, id DESC``); no filters."""
    query = select(WorkerDefinition).order_by(WorkerDefinition.inserted_at.desc(), WorkerDefinition.id.desc())
    definitions, total = await page_of(session, query, page, size)
    return {"data": [worker_definition_view(definition) for definition in definitions], "total": total}


@get("/worker_definitions/{definition_id:str}")
async def show_worker_definition(
    definition_id: FromPath[str], session: NamedDependency[AsyncSession], principal: NamedDependency[Principal]
) -> dict[str, Any]:
    if not definition_id.isdigit():
        raise invalid("id")
    number = int(definition_id)
    definition = await session.get(WorkerDefinition, number) if number <= BIGINT_MAX else None
    if definition is None:
        raise not_found("Worker definition", definition_id)
    return {"data": worker_definition_view(definition)}


@post("/worker_definitions", status_code=201)
async def create_worker_definition(
    request: Request, session: NamedDependency[AsyncSession], principal: NamedDependency[Principal]
) -> Response:
    """The flat definition of an SDK 1.x worker, or an SDK 2.x description (no
    ``short_description``, ``parameters`` a JSON Schema). The same queue and version again
    refreshes the stored definition instead of adding a second one."""
    body = await json_object(request)
    try:
        values = worker_definition_values(body)
    except InvalidWorkerPayload as error:
        raise ApiError(422, {"errors": error.errors}) from None
    async with session.begin():
        definition_id = (await session.execute(upsert_worker_definition_statement(values))).scalar_one()
    definition = await session.get(WorkerDefinition, definition_id, populate_existing=True)
    assert definition is not None
    return Response(content={"data": worker_definition_view(definition)}, status_code=201)


# Live workers (§7.4)

PRESENCE = "Any value, even `false`, turns the filter on (as the original)."


@get("/live_workers")
async def list_live_workers(
    session: NamedDependency[AsyncSession],
    principal: NamedDependency[Principal],
    page: Page = 0,
    size: Size = 10,
    initializing: Annotated[str | None, Parameter(description=f"Initializing workers. {PRESENCE}")] = None,
    started: Annotated[str | None, Parameter(description=f"Started, not terminated workers. {PRESENCE}")] = None,
    terminated: Annotated[str | None, Parameter(description=f"Terminated workers. {PRESENCE}")] = None,
) -> dict[str, Any]:
    """Newest first (``inserted_at DESC, id DESC``); the filters are ANDed."""
    present = {"initializing": initializing, "started": started, "terminated": terminated}
    query = (
        select(LiveWorker)
        .where(*live_worker_filters([key for key, value in present.items() if value is not None]))
        .order_by(LiveWorker.inserted_at.desc(), LiveWorker.id.desc())
    )
    workers, total = await page_of(session, query, page, size)
    return {"data": [live_worker_view(worker) for worker in workers], "total": total}


# Workers (§7.5)


@get("/workers")
async def list_workers(
    session: NamedDependency[AsyncSession],
    principal: NamedDependency[Principal],
    settings: NamedDependency[Settings],
    page: Page = 0,
    size: Size = 10,
) -> dict[str, Any]:
    """The last status of every worker instance seen, newest first (``inserted_at DESC``)."""
    query = select(WorkerStatus).order_by(WorkerStatus.inserted_at.desc(), WorkerStatus.instance_id)
    statuses, total = await page_of(session, query, page, size)
    lost_since = lost_before(utcnow(), settings.workers_status_interval)
    return {"data": [worker_status_view(status, lost_since) for status in statuses], "total": total}


@get("/workers/{instance_id:str}")
async def show_worker(
    instance_id: FromPath[str],
    session: NamedDependency[AsyncSession],
    principal: NamedDependency[Principal],
    settings: NamedDependency[Settings],
) -> dict[str, Any]:
    """The bare status object (not wrapped in ``data``, as in the original); 404 when unknown."""
    status = await session.get(WorkerStatus, instance_id)
    if status is None:
        raise not_found("Worker", instance_id)
    return worker_status_view(status, lost_before(utcnow(), settings.workers_status_interval))


@route("/workers/{instance_id:str}", http_method=["PUT", "PATCH"], status_code=204)
async def order_worker(
    request: Request,
    instance_id: FromPath[str],
    session: NamedDependency[AsyncSession],
    sync_sessions: NamedDependency[sessionmaker[Session]],
    send_owed: NamedDependency[OwedSender],
    principal: NamedDependency[Principal],
) -> None:
    """Send the body (minus ``id``) to that worker instance as a direct message (proto §5),
    e.g. ``{"type": "stop_process", "job_id": 123}``."""
    if await session.get(WorkerStatus, instance_id) is None:
        raise not_found("Worker", instance_id)
    body = await json_object(request)
    await session.close()
    await send_to_worker(sync_sessions, send_owed, instance_id, body)


ROUTES = [
    list_worker_definitions,
    show_worker_definition,
    create_worker_definition,
    list_live_workers,
    list_workers,
    show_worker,
    order_worker,
]
