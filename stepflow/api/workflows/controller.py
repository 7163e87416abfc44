"""``POST /workflows``, ``POST /launch_workflow`` and ``GET /workflows/:id``."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stepflow.api.errors import invalid, not_found, reason
from stepflow.api.workflows import service
from stepflow.api.workflows.views import created_view, full_view, simple_view
from stepflow.security import Principal, has_right


async def json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = msgspec.json.decode(raw) if raw else {}
    except msgspec.DecodeError:
        raise invalid("body", "is not valid JSON") from None
    if not isinstance(body, dict):
        raise invalid("body", "must be a JSON object")
    return body


@post(["/workflows", "/launch_workflow"], status_code=201)
async def launch_workflow(
    request: Request,
    sessions: NamedDependency[async_sessionmaker[AsyncSession]],
    launcher: NamedDependency[service.Launcher],
    principal: NamedDependency[Principal],
) -> Response:
    """Launch the latest (or the given ``version``) definition of ``workflow_identifier``."""
    body = await json_object(request)
    workflow = await service.launch(sessions, launcher, principal, body)
    return Response(content={"data": created_view(workflow)}, status_code=201)


@get("/workflows/{workflow_id:str}")
async def show_workflow(
    request: Request,
    workflow_id: FromPath[str],
    session: NamedDependency[AsyncSession],
    principal: NamedDependency[Principal],
) -> dict[str, Any]:
    """The full view (default) or ``?mode=simple``."""
    if not workflow_id.isdigit():
        raise invalid("id")
    mode = request.query_params.get("mode", "full")
    if mode not in ("full", "simple"):
        raise invalid("mode", "must be full or simple")
    workflow = await service.load_workflow(session, int(workflow_id))
    if workflow is None:
        raise not_found("Workflow", workflow_id)
    if not has_right(workflow.rights, principal, "view"):
        raise reason(403, "Forbidden to view workflow with this identifier")
    view = await (simple_view(session, workflow) if mode == "simple" else full_view(session, workflow))
    return {"data": view}


ROUTES = [launch_workflow, show_workflow]
