"""Launching, listing and reading workflows (async; the web process)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio.to_thread
import structlog
from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from stepflow.api.errors import invalid, reason
from stepflow.api.workflows.parameters import merge_parameters
from stepflow.changes import WORKFLOW_CREATED, Change, WorkflowRef, record
from stepflow.engine.states import WorkflowState
from stepflow.models import Outbox, Right, Workflow, WorkflowDefinition, WorkflowStatus, WorkflowStep
from stepflow.models.base import utcnow
from stepflow.queries import definition_version, visible_workflow_count, visible_workflows
from stepflow.security import Principal, has_right

log = structlog.get_logger(__name__)

Launcher = Callable[[int], Any]
"""Hands a committed workflow to the ``launch_workflow`` actor (blocking; run in a thread)."""

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
LAUNCH_ACTOR = "launch_workflow"


def _version(body: dict[str, Any]) -> tuple[int, int, int] | None:
    raw = body.get("version")
    if raw is None:
        return None
    match = _VERSION.match(raw) if isinstance(raw, str) else None
    if match is None:
        raise invalid("version", 'must be "major.minor.micro"')
    major, minor, micro = match.groups()
    return int(major), int(minor), int(micro)


async def find_definition(session: AsyncSession, body: dict[str, Any]) -> WorkflowDefinition:
    identifier = body.get("workflow_identifier")
    if not isinstance(identifier, str) or not identifier:
        raise reason(422, "Missing Workflow identifier parameter")
    version = _version(body)
    definition = await session.scalar(definition_version(identifier, version))
    if definition is None:
        if version is not None:
            raise reason(422, "Unable to locate workflow with this identifier and version")
        raise reason(422, "Unable to locate workflow with this identifier")
    await session.refresh(definition, ["rights"])
    return definition


async def create_workflow(session: AsyncSession, principal: Principal, body: dict[str, Any]) -> Workflow:
    """Insert the workflow, its rights, step counters, first status and launch outbox entry.

    The caller commits; everything a launch needs is then durable in one transaction.
    """
    definition = await find_definition(session, body)
    if not has_right(definition.rights, principal, "create"):
        raise reason(403, "Forbidden to create workflow with this identifier")
    reference = body.get("reference")
    if reference is None:
        raise invalid("reference", "can't be blank")
    if not isinstance(reference, str):
        raise invalid("reference")
    workflow = Workflow(
        definition_id=definition.id,
        schema_version=definition.schema_version,
        identifier=definition.identifier,
        version_major=definition.version_major,
        version_minor=definition.version_minor,
        version_micro=definition.version_micro,
        tags=list(definition.tags),
        is_live=definition.is_live,
        reference=reference,
        steps=list(definition.steps),
        parameters=merge_parameters(list(definition.parameters), body.get("parameters")),
        notification_hooks=list(definition.notification_hooks),
        status=WorkflowState.PENDING,
        rights=[Right(action=right.action, groups=list(right.groups)) for right in definition.rights],
    )
    session.add(workflow)
    await session.flush()
    record(session.sync_session, Change(WORKFLOW_CREATED, WorkflowRef.of(workflow)))
    session.add_all(
        WorkflowStep(workflow_id=workflow.id, step_id=step["id"], name=step["name"]) for step in workflow.steps
    )
    session.add(WorkflowStatus(workflow_id=workflow.id, state=WorkflowState.PENDING))
    session.add(Outbox(actor=LAUNCH_ACTOR, payload={"workflow_id": workflow.id}))
    return workflow


async def launch(
    sessions: async_sessionmaker[AsyncSession], launcher: Launcher, principal: Principal, body: dict[str, Any]
) -> Workflow:
    """Create and commit the workflow, then hand it to the actors.

    If the broker is unreachable the outbox entry stays and the clock sends it later: an
    accepted workflow is never lost.
    """
    async with sessions() as session:
        async with session.begin():
            workflow = await create_workflow(session, principal, body)
    log.info("workflow created", workflow_id=workflow.id, identifier=workflow.identifier)
    try:
        await anyio.to_thread.run_sync(launcher, workflow.id)
    except Exception as error:  # the clock relays the outbox entry
        log.warning("launch message not sent, left to the clock", workflow_id=workflow.id, error=str(error))
        return workflow
    async with sessions() as session:
        async with session.begin():
            await session.execute(
                update(Outbox)
                .where(Outbox.actor == LAUNCH_ACTOR, Outbox.payload.contains({"workflow_id": workflow.id}))
                .values(sent_at=utcnow())
            )
    return workflow


async def load_workflow(session: AsyncSession, workflow_id: int) -> Workflow | None:
    workflow = await session.scalar(select(Workflow).where(Workflow.id == workflow_id))
    if workflow is not None:
        await session.refresh(workflow, ["rights"])
    return workflow


WORKFLOW_STATES_FILTER = frozenset({*WorkflowState, "skipped", "retrying"})
"""Values of the ``states`` filter: ours (ours.md §3.4) plus the original's ``skipped`` and
``retrying``, still accepted (no current status holds them, so they match nothing)."""


@dataclass(frozen=True)
class WorkflowFilters:
    """``GET /workflows`` filters (api.md §6.1), already parsed; None = no filter."""

    identifier: str | None = None
    version_major: int | None = None
    version_minor: int | None = None
    version_micro: int | None = None
    is_live: bool | None = None
    live_mode: bool | None = None
    after: datetime | None = None
    before: datetime | None = None
    before_exclusive: bool = False
    states: list[str] | None = None
    ids: list[int] | None = None
    identifiers: list[str] | None = None
    search: str | None = None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def workflow_conditions(principal: Principal, filters: WorkflowFilters) -> list[ColumnElement[bool]]:
    """The WHERE of ``GET /workflows``: the ``view`` right first, then every filter ANDed."""
    conditions: list[ColumnElement[bool]] = [visible_workflows(principal.groups)]
    if filters.identifier is not None:
        conditions.append(Workflow.identifier == filters.identifier)
    for column, value in (
        (Workflow.version_major, filters.version_major),
        (Workflow.version_minor, filters.version_minor),
        (Workflow.version_micro, filters.version_micro),
    ):
        if value is not None:
            conditions.append(column == value)
    for live in (filters.is_live, filters.live_mode):
        if live is not None:
            conditions.append(Workflow.is_live == live)
    if filters.after is not None:
        conditions.append(Workflow.inserted_at >= filters.after)
    if filters.before is not None and filters.before_exclusive:
        conditions.append(Workflow.inserted_at < filters.before)
    elif filters.before is not None:
        conditions.append(Workflow.inserted_at <= filters.before)
    if filters.states is not None:
        conditions.append(Workflow.status.in_(filters.states))
    if filters.ids is not None:
        conditions.append(Workflow.id.in_(filters.ids))
    if filters.identifiers is not None:
        conditions.append(Workflow.identifier.in_(filters.identifiers))
    if filters.search is not None:
        pattern = f"%{_escape_like(filters.search)}%"
        conditions.append(
            or_(Workflow.reference.ilike(pattern, escape="\\"), Workflow.identifier.ilike(pattern, escape="\\"))
        )
    return conditions


async def list_workflows(
    session: AsyncSession, principal: Principal, filters: WorkflowFilters, page: int, size: int
) -> tuple[int, list[Workflow]]:
    """The total and one page, newest first (``inserted_at DESC, id DESC``), rights loaded.

    Two statements plus one for the rights of the page. Without filters the total comes from
    the trigger-kept counters (a sum over a few rows, not a count over every workflow).
    """
    conditions = workflow_conditions(principal, filters)
    if filters == WorkflowFilters():
        total = await session.scalar(visible_workflow_count(principal.groups))
    else:
        total = await session.scalar(select(func.count()).select_from(Workflow).where(*conditions))
    workflows = await session.scalars(
        select(Workflow)
        .where(*conditions)
        .order_by(Workflow.inserted_at.desc(), Workflow.id.desc())
        .offset(page * size)
        .limit(size)
        .options(selectinload(Workflow.rights))
    )
    return total or 0, list(workflows)
