"""``GET /jobs``: jobs of the workflows the user may view (ours.md §1.13), newest first."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import get
from litestar.di import NamedDependency
from litestar.params import Parameter
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from stepflow.api.jobs.views import job_views
from stepflow.api.query import OptionalBigInt, Page, Size, text_filter
from stepflow.models import Job, Workflow
from stepflow.queries import visible_workflows
from stepflow.security import Principal


@get("/jobs")
async def list_jobs(
    session: NamedDependency[AsyncSession],
    principal: NamedDependency[Principal],
    page: Page = 0,
    size: Size = 10,
    workflow_id: OptionalBigInt = None,
    step_id: OptionalBigInt = None,
    job_type: Annotated[str | None, Parameter(description="The job (step) name, e.g. `job_transfer`.")] = None,
    direct_messaging_queue_name: Annotated[
        str | None, Parameter(description="Live jobs whose `direct_messaging_queue_name` parameter is this queue.")
    ] = None,
) -> dict[str, Any]:
    """api.md §7.2, restricted to workflows the user may ``view``; ``inserted_at DESC, id DESC``."""
    filters: list[ColumnElement[bool]] = [
        Job.workflow_id.in_(select(Workflow.id).where(visible_workflows(principal.groups)))
    ]
    if workflow_id is not None:
        filters.append(Job.workflow_id == workflow_id)
    if step_id is not None:
        filters.append(Job.step_id == step_id)
    job_type = text_filter("job_type", job_type)
    if job_type:
        filters.append(Job.name == job_type)
    queue = text_filter("direct_messaging_queue_name", direct_messaging_queue_name)
    if queue:
        element = {
            "id": "direct_messaging_queue_name",
            "type": "string",
            "value": queue.removeprefix("direct_messaging_"),
        }
        filters.append(Job.parameters.contains([element]))
    total = await session.scalar(select(func.count()).select_from(Job).where(*filters))
    job_ids = await session.scalars(
        select(Job.id).where(*filters).order_by(Job.inserted_at.desc(), Job.id.desc()).offset(page * size).limit(size)
    )
    return {"data": await job_views(session, job_ids.all()), "total": total or 0}


ROUTES = [list_jobs]
