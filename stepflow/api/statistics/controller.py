"""``GET /workflows_statistics`` (api.md §7.1)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from stepflow.api.query import LIST_FORMS, MAX_INT, as_list, parse_datetime
from stepflow.api.statistics.service import window, workflow_statistics
from stepflow.security import Principal

DATETIME = "`YYYY-MM-DD HH:MM:SS` (or `T`; fractions truncated; UTC unless an offset is given)"


@get("/workflows_statistics")
async def statistics(
    request: Request,
    session: NamedDependency[AsyncSession],
    principal: NamedDependency[Principal],
    start_date: Annotated[str | None, Parameter(description=f"{DATETIME}; default end_date - 24 h.")] = None,
    end_date: Annotated[str | None, Parameter(description=f"{DATETIME}; default now.")] = None,
    time_interval: Annotated[
        int | None,
        Parameter(le=MAX_INT, description="Bin width in seconds (at least 1); default (end - start) / 60."),
    ] = None,
    identifiers: Annotated[
        list[str] | None, Parameter(description=f"Workflow identifiers; all when absent. {LIST_FORMS}")
    ] = None,
) -> dict[str, Any]:
    """Workflow status changes per state, in bins counted back from ``end_date``."""
    frame = window(
        parse_datetime("start_date", start_date) if start_date else None,
        parse_datetime("end_date", end_date) if end_date else None,
        time_interval,
    )
    data = await workflow_statistics(session, principal, frame, as_list(request, "identifiers", identifiers))
    return {"data": data}


ROUTES = [statistics]
