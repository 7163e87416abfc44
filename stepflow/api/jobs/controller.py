"""``GET /jobs``: jobs of the workflows the user may view (ours.md §1.13), newest first."""

from __future__ import annotations

from typing import Any

from litestar import Request, get
from litestar.di import NamedDependency
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from stepflow.api.jobs.views import job_views
from stepflow.api.query import pagination, query_int
from stepflow.models import Job, Workflow
from stepflow.queries import workflow_right
from stepflow.security import Principal


@get("/jobs")
async def list_jobs(
    request: Request, session: NamedDependency[AsyncSession], principal: NamedDependency[Principal]
) -> dict[str, Any]:
    page, size = pagination(request)
    filters: list[ColumnElement[bool]] = [
        Job.workflow_id.in_(select(Workflow.id).where(workflow_right("view", principal.groups)))
    ]
    workflow_id = query_int(request, "workflow_id")
    if workflow_id is not None:
        filters.append(Job.workflow_id == workflow_id)
    step_id = query_int(request, "step_id")
    if step_id is not None:
        filters.append(Job.step_id == step_id)
    job_type = request.query_params.get("job_type")
    if job_type:
        filters.append(Job.name == job_type)
    queue = request.query_params.get("direct_messaging_queue_name")
    if queue:
        element = {
            "id": "direct_messaging_queue_name",
            "type": "string",
            "value": queue.removeprefix("direct_messaging_"),
        }
        filters.append(Job.parameters.contains([element]))
    total = await session.scalar(select(func.count()).select_from(Job).where(*filters))
    jobs = await session.scalars(
        select(Job).where(*filters).order_by(Job.inserted_at.desc(), Job.id.desc()).offset(page * size).limit(size)
    )
    return {"data": await job_views(session, list(jobs)), "total": total}


ROUTES = [list_jobs]
