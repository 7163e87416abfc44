"""``POST /workflows/:id/events``: retry, abort, stop, pause, resume, update, delete (ours.md §3.5).

The change itself is decided by ``stepflow.orchestration.events`` in one transaction holding the
workflow lock (the same code the actors use, run in a worker thread); what it owes the
broker is sent after commit, and the clock re-sends it if that fails.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, sessionmaker

from stepflow.orchestration import events
from stepflow.orchestration.outbox import Owed
from stepflow.api.errors import ApiError, invalid, not_found
from stepflow.api.query import parse_id
from stepflow.api.workflows.controller import json_object
from stepflow.api.workflows.running import OwedSender, run_change
from stepflow.api.workflows.service import load_workflow
from stepflow.security import Principal, has_right
from stepflow.settings import Settings

__all__ = ["EVENTS", "ROUTES", "OwedSender", "workflow_event"]

Apply = Callable[[Session, int, Mapping[str, Any], str], Owed | None]


@dataclass(frozen=True)
class Event:
    right: str
    denied: str
    required: tuple[str, ...]
    apply: Apply


def _job_id(body: Mapping[str, Any]) -> int:
    job_id = body["job_id"]
    if not isinstance(job_id, int) or isinstance(job_id, bool):
        raise invalid("job_id")
    return job_id


def _update_parameters(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    parameters = body["parameters"]
    if not isinstance(parameters, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("id"), str) and "value" in entry for entry in parameters
    ):
        raise invalid("parameters", 'must be a list of {"id", "value"} objects')
    return [{"id": entry["id"], "value": entry["value"]} for entry in parameters]


def _retry(session: Session, workflow_id: int, body: Mapping[str, Any], work_directory: str) -> Owed:
    return events.retry(session, workflow_id, _job_id(body), work_directory)


def _abort(session: Session, workflow_id: int, body: Mapping[str, Any], work_directory: str) -> Owed:
    return events.abort(session, workflow_id, work_directory)


def _pause(session: Session, workflow_id: int, body: Mapping[str, Any], work_directory: str) -> None:
    events.pause(session, workflow_id)


def _resume(session: Session, workflow_id: int, body: Mapping[str, Any], work_directory: str) -> Owed:
    return events.resume(session, workflow_id, work_directory)


def _update(session: Session, workflow_id: int, body: Mapping[str, Any], work_directory: str) -> Owed:
    return events.update(session, workflow_id, _job_id(body), _update_parameters(body))


def _delete(session: Session, workflow_id: int, body: Mapping[str, Any], work_directory: str) -> Owed:
    return events.delete(session, workflow_id, work_directory)


EVENTS: dict[str, Event] = {
    "retry": Event("retry", "Forbidden to retry this workflow", ("job_id",), _retry),
    "abort": Event("abort", "Forbidden to abort this workflow", (), _abort),
    # A non-live workflow has nothing to stop but its jobs: stop is abort (ours.md §3.5); abort
    # stops the live jobs of a live workflow as engine.md §10 says.
    "stop": Event("abort", "Forbidden to stop this workflow", (), _abort),
    # The standard's rights have no pause/resume action: they need abort.
    "pause": Event("abort", "Forbidden to pause this workflow", (), _pause),
    "resume": Event("abort", "Forbidden to resume this workflow", (), _resume),
    "update": Event("update", "Forbidden to update this workflow", ("job_id", "parameters"), _update),
    "delete": Event("delete", "Forbidden to delete this workflow", (), _delete),
}


def _unsupported() -> Response:
    return Response(content="event is not supported", status_code=422, media_type="text/plain")


@post("/workflows/{workflow_id:str}/events", status_code=200)
async def workflow_event(
    request: Request,
    workflow_id: FromPath[str],
    session: NamedDependency[AsyncSession],
    sync_sessions: NamedDependency[sessionmaker[Session]],
    send_owed: NamedDependency[OwedSender],
    settings: NamedDependency[Settings],
    principal: NamedDependency[Principal],
) -> Response:
    workflow = await load_workflow(session, parse_id(workflow_id))
    if workflow is None:
        raise not_found("Workflow", workflow_id)
    body = await json_object(request)
    event = EVENTS.get(body.get("event")) if isinstance(body.get("event"), str) else None
    if event is None or any(key not in body for key in event.required):
        return _unsupported()
    if not has_right(workflow.rights, principal, event.right):
        raise ApiError(403, {"status": "error", "message": event.denied})
    await session.close()  # the change runs on its own connection, under the workflow lock

    def change(sync_session: Session) -> Owed | None:
        return event.apply(sync_session, workflow.id, body, settings.workers_work_directory)

    await run_change(sync_sessions, send_owed, workflow.id, body["event"], change)
    return Response(content={"status": "ok"}, status_code=200)


ROUTES = [workflow_event]
