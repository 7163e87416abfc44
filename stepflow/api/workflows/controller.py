"""``/workflows``: launch, list, show, delete; PUT/PATCH answer 405 (ours.md §3.3)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, delete, get, post, route
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker

from stepflow.orchestration import events
from stepflow.orchestration.outbox import Owed
from stepflow.api.errors import invalid, not_found, reason
from stepflow.api.query import (
    LIST_FORMS,
    OptionalBigInt,
    Page,
    Size,
    as_ints,
    as_list,
    is_date_only,
    parse_bound,
    parse_id,
    text_filter,
)
from stepflow.api.workflows import service
from stepflow.api.workflows.launch_relay import HandOver
from stepflow.api.workflows.running import OwedSender, run_change
from stepflow.api.workflows.views import created_view, full_view, full_views, simple_view
from stepflow.security import Principal, has_right
from stepflow.settings import Settings


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
    hand_over: NamedDependency[HandOver],
    principal: NamedDependency[Principal],
) -> Response:
    """Launch the latest (or the given ``version``) definition of ``workflow_identifier``."""
    body = await json_object(request)
    workflow = await service.launch(sessions, hand_over, principal, body)
    return Response(content={"data": created_view(workflow)}, status_code=201)


def _live_filter(modes: list[str] | None) -> bool | None:
    """``mode``: ``live`` → live workflows only, ``file`` → the others, both (any order) or
    none → no filter."""
    if modes is None:
        return None
    chosen = set(modes)
    if not chosen <= {"live", "file"}:
        raise invalid("mode", "is invalid: expected live and/or file")
    if len(chosen) == 2:
        return None
    return chosen == {"live"}


@get("/workflows")
async def list_workflows(
    request: Request,
    session: NamedDependency[AsyncSession],
    principal: NamedDependency[Principal],
    page: Page = 0,
    size: Size = 10,
    identifier: Annotated[str | None, Parameter(description="Exact workflow identifier.")] = None,
    version_major: OptionalBigInt = None,
    version_minor: OptionalBigInt = None,
    version_micro: OptionalBigInt = None,
    is_live: Annotated[bool | None, Parameter(description="`true` for live workflows, `false` for file ones.")] = None,
    mode: Annotated[
        list[str] | None, Parameter(description=f"`live` and/or `file` (both = no filter). {LIST_FORMS}")
    ] = None,
    after_date: Annotated[
        str | None, Parameter(description="Inserted at or after: `YYYY-MM-DD` or an ISO-8601 datetime (UTC if naive).")
    ] = None,
    before_date: Annotated[
        str | None,
        Parameter(description="Inserted at or before: an ISO-8601 datetime, or `YYYY-MM-DD` (the whole day)."),
    ] = None,
    states: Annotated[
        list[str] | None,
        Parameter(
            description="Current workflow status among pending, processing, paused, error, completed, aborted "
            f"(skipped and retrying are accepted and match nothing). {LIST_FORMS}"
        ),
    ] = None,
    ids: Annotated[list[str] | None, Parameter(description=f"Workflow ids. {LIST_FORMS}")] = None,
    workflow_ids: Annotated[
        list[str] | None, Parameter(description=f"Workflow identifiers (sic, as the original). {LIST_FORMS}")
    ] = None,
    search: Annotated[
        str | None, Parameter(description="Case-insensitive substring of the reference or the identifier.")
    ] = None,
) -> dict[str, Any]:
    """Workflows the user may ``view``, newest first, as full views (api.md §6.1)."""
    state_list = as_list(request, "states", states)
    if state_list is not None and not set(state_list) <= service.WORKFLOW_STATES_FILTER:
        raise invalid("states")
    before = before_date or None
    after = after_date or None
    filters = service.WorkflowFilters(
        identifier=text_filter("identifier", identifier),
        version_major=version_major,
        version_minor=version_minor,
        version_micro=version_micro,
        is_live=is_live,
        live_mode=_live_filter(as_list(request, "mode", mode)),
        after=parse_bound("after_date", after, end_of_day=False) if after else None,
        before=parse_bound("before_date", before, end_of_day=True) if before else None,
        before_exclusive=bool(before and is_date_only(before)),
        states=state_list,
        ids=as_ints("ids", as_list(request, "ids", ids)),
        identifiers=as_list(request, "workflow_ids", workflow_ids),
        search=text_filter("search", search),
    )
    total, workflows = await service.list_workflows(session, principal, filters, page, size)
    return {"data": await full_views(session, workflows), "total": total}


@get("/workflows/{workflow_id:str}")
async def show_workflow(
    workflow_id: FromPath[str],
    session: NamedDependency[AsyncSession],
    principal: NamedDependency[Principal],
    mode: Annotated[str, Parameter(description="`full` (default) or `simple`.")] = "full",
) -> dict[str, Any]:
    """The full view (default) or ``?mode=simple``."""
    identifier = parse_id(workflow_id)
    if mode not in ("full", "simple"):
        raise invalid("mode", "must be full or simple")
    workflow = await service.load_workflow(session, identifier)
    if workflow is None:
        raise not_found("Workflow", workflow_id)
    if not has_right(workflow.rights, principal, "view"):
        raise reason(403, "Forbidden to view workflow with this identifier")
    view = await (simple_view(session, workflow) if mode == "simple" else full_view(session, workflow))
    return {"data": view}


@delete("/workflows/{workflow_id:str}", status_code=204)
async def delete_workflow(
    workflow_id: FromPath[str],
    session: NamedDependency[AsyncSession],
    sync_sessions: NamedDependency[sessionmaker[Session]],
    send_owed: NamedDependency[OwedSender],
    settings: NamedDependency[Settings],
    principal: NamedDependency[Principal],
) -> None:
    """Needs the ``delete`` right. A running workflow is aborted first, as the ``delete``
    event does (ours.md §3.5); then the workflow and everything it owns are deleted."""
    identifier = parse_id(workflow_id)
    workflow = await service.load_workflow(session, identifier)
    if workflow is None:
        raise not_found("Workflow", workflow_id)
    if not has_right(workflow.rights, principal, "delete"):
        raise reason(403, "Forbidden to delete workflow with this identifier")
    await session.close()  # the change runs on its own connection, under the workflow lock

    def change(sync_session: Session) -> Owed:
        return events.delete(sync_session, identifier, settings.workers_work_directory)

    await run_change(sync_sessions, send_owed, identifier, "delete", change)


@route("/workflows/{workflow_id:str}", http_method=["PUT", "PATCH"], status_code=405)
async def update_workflow(workflow_id: FromPath[str], principal: NamedDependency[Principal]) -> Response:
    """Workflows cannot be changed through this route (ours.md §3.3): use the events."""
    return Response(
        content={"errors": {"detail": "Method not allowed"}}, status_code=405, headers={"Allow": "GET, DELETE"}
    )


ROUTES = [launch_workflow, list_workflows, show_workflow, delete_workflow, update_workflow]
