"""Launching, listing and reading workflows (async; the web process)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import structlog
from sqlalchemy import (
    BigInteger,
    ColumnClause,
    ColumnElement,
    DateTime,
    Row,
    Select,
    String,
    TableValuedAlias,
    Text,
    bindparam,
    column,
    func,
    insert,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from stepflow.api.errors import invalid, reason
from stepflow.api.workflows.launch_relay import HandOver, Launch
from stepflow.api.workflows.parameters import merge_parameters
from stepflow.changes import WORKFLOW_CREATED, Change, WorkflowRef, record
from stepflow.engine.states import WorkflowState
from stepflow.engine.status import StepCounts
from stepflow.models import Outbox, Right, Workflow, WorkflowDefinition, WorkflowStatus, WorkflowStep
from stepflow.models.base import utcnow
from stepflow.models.workflow import view_groups
from stepflow.queries import definition_version, visible_workflow_count, visible_workflows
from stepflow.security import Principal, has_right
from stepflow.wire.handover import LAUNCH_WORKFLOW

log = structlog.get_logger(__name__)

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def _version(body: dict[str, Any]) -> tuple[int, int, int] | None:
    raw = body.get("version")
    if raw is None:
        return None
    match = _VERSION.match(raw) if isinstance(raw, str) else None
    if match is None:
        raise invalid("version", 'must be "major.minor.micro"')
    major, minor, micro = match.groups()
    return int(major), int(minor), int(micro)


class DefinitionRight(NamedTuple):
    """A right of the launched definition, copied to the workflow."""

    action: str
    groups: list[str]


_VERSION_PARTS = ("version_major", "version_minor", "version_micro")


@functools.cache
def _launchable(versioned: bool) -> Select[Any]:
    """The columns of the definition a launch copies, and its rights as a JSON array, in one
    statement. Parameters: ``identifier``, and the ``version_major``, ``version_minor`` and
    ``version_micro`` wanted when ``versioned`` (else the latest). Built once per shape, as
    :func:`_insert_launch`: building a statement costs more CPU than running it."""
    rights = (
        select(
            func.jsonb_agg(
                aggregate_order_by(func.jsonb_build_object("action", Right.action, "groups", Right.groups), Right.id)
            )
        )
        .where(Right.definition_id == WorkflowDefinition.id)
        .scalar_subquery()
    )
    version = [bindparam(part, type_=BigInteger) for part in _VERSION_PARTS] if versioned else None
    return definition_version(bindparam("identifier", type_=String), version).with_only_columns(
        WorkflowDefinition.id,
        WorkflowDefinition.schema_version,
        WorkflowDefinition.identifier,
        WorkflowDefinition.version_major,
        WorkflowDefinition.version_minor,
        WorkflowDefinition.version_micro,
        WorkflowDefinition.tags,
        WorkflowDefinition.is_live,
        WorkflowDefinition.steps,
        WorkflowDefinition.parameters,
        WorkflowDefinition.notification_hooks,
        rights.label("rights"),
    )


async def find_definition(session: AsyncSession, body: dict[str, Any]) -> Row[Any]:
    """The definition ``body`` launches (``workflow_identifier``, ``version`` or the latest),
    as the row of :func:`_launchable`; 422 when there is none."""
    identifier = body.get("workflow_identifier")
    if not isinstance(identifier, str) or not identifier:
        raise reason(422, "Missing Workflow identifier parameter")
    version = _version(body)
    parameters = {"identifier": identifier, **dict(zip(_VERSION_PARTS, version or (), strict=False))}
    definition = (await session.execute(_launchable(version is not None), parameters)).one_or_none()
    if definition is None:
        if version is not None:
            raise reason(422, "Unable to locate workflow with this identifier and version")
        raise reason(422, "Unable to locate workflow with this identifier")
    return definition


def _records(name: str, *columns: ColumnClause[Any]) -> TableValuedAlias:
    """``jsonb_to_recordset(:name) AS name(columns)``: a JSON array of objects as a table."""
    return (
        func.jsonb_to_recordset(bindparam(name, type_=JSONB))
        .table_valued(*columns)
        .render_derived(name=name, with_types=True)
    )


@functools.cache
def _insert_launch(columns: tuple[str, ...]) -> Select[tuple[int, int]]:
    """Every row of a launch in one statement (data-modifying CTEs, each joined to the new
    workflow): the workflow, its copies of the definition's rights, one counter row per step,
    its first status and its launch outbox row; selects (workflow id, outbox id).

    Parameters: the workflow's ``columns`` by name, ``now`` (its timestamps and its rows'),
    ``definition_rights`` (``[{"action", "groups"}]``) and ``workflow_steps``
    (``[{"id", "name"}]``). Built once per set of columns.
    """
    at = bindparam("now", type_=DateTime(timezone=True))
    new_workflow = (
        insert(Workflow)
        .values({**{name: bindparam(name) for name in columns}, "inserted_at": at, "updated_at": at})
        .returning(Workflow.id)
        .cte("new_workflow")
    )
    workflow_id = new_workflow.c.id
    definition_rights = _records("definition_rights", column("action", String), column("groups", ARRAY(Text)))
    new_rights = insert(Right).from_select(
        ["workflow_id", "action", "groups", "inserted_at"],
        select(workflow_id, definition_rights.c.action, definition_rights.c.groups, at).select_from(
            new_workflow.join(definition_rights, true())
        ),
        include_defaults=False,
    )
    workflow_steps = _records("workflow_steps", column("id", BigInteger), column("name", String))
    no_jobs = StepCounts()._asdict()  # a new step's counters
    new_steps = insert(WorkflowStep).from_select(
        ["workflow_id", "step_id", "name", *no_jobs],
        select(workflow_id, workflow_steps.c.id, workflow_steps.c.name, *map(literal, no_jobs.values())).select_from(
            new_workflow.join(workflow_steps, true())
        ),
        include_defaults=False,
    )
    new_status = insert(WorkflowStatus).from_select(
        ["workflow_id", "state", "inserted_at"], select(workflow_id, literal(WorkflowState.PENDING.value), at), include_defaults=False
    )
    new_outbox = (
        insert(Outbox)
        .from_select(
            ["actor", "payload", "inserted_at"],
            select(literal(LAUNCH_WORKFLOW.actor_name), func.jsonb_build_object("workflow_id", workflow_id), at),
            include_defaults=False,
        )
        .returning(Outbox.id)
        .cte("new_outbox")
    )
    return (
        select(workflow_id, new_outbox.c.id)
        .select_from(new_workflow.join(new_outbox, true()))
        .add_cte(new_rights.cte("new_rights"), new_steps.cte("new_steps"), new_status.cte("new_status"))
    )


async def create_workflow(session: AsyncSession, principal: Principal, body: dict[str, Any]) -> tuple[Workflow, int]:
    """Insert the workflow, its rights, step counters, first status and launch outbox entry;
    returns the workflow (not attached to the session: what the created view and the change
    listeners read) and the outbox row's id.

    Two statements, each built once: the definition with its rights, then one ``INSERT`` of
    every row (through the ORM it took eight: three ``SELECT`` to load the definition and its
    rights, an ``INSERT`` per table over two flushes). The caller commits; everything a launch
    needs is then durable in one transaction.
    """
    definition = await find_definition(session, body)
    rights = definition.rights or []
    if not has_right([DefinitionRight(**right) for right in rights], principal, "create"):
        raise reason(403, "Forbidden to create workflow with this identifier")
    reference = body.get("reference")
    if reference is None:
        raise invalid("reference", "can't be blank")
    if not isinstance(reference, str):
        raise invalid("reference")
    values: dict[str, Any] = {
        "definition_id": definition.id,
        "schema_version": definition.schema_version,
        "identifier": definition.identifier,
        "version_major": definition.version_major,
        "version_minor": definition.version_minor,
        "version_micro": definition.version_micro,
        "tags": definition.tags,
        "is_live": definition.is_live,
        "reference": reference,
        "steps": definition.steps,
        "parameters": merge_parameters(list(definition.parameters), body.get("parameters")),
        "notification_hooks": definition.notification_hooks,
        "status": WorkflowState.PENDING,
        "view_groups": view_groups(DefinitionRight(**right) for right in rights),
    }
    now = utcnow()
    rows = {
        "now": now,
        "definition_rights": rights,
        "workflow_steps": [{"id": step["id"], "name": step["name"]} for step in definition.steps],
    }
    workflow_id, outbox_id = (await session.execute(_insert_launch(tuple(values)), {**values, **rows})).one()
    workflow = Workflow(id=workflow_id, inserted_at=now, updated_at=now, **values)
    record(session.sync_session, Change(WORKFLOW_CREATED, WorkflowRef.of(workflow)))
    return workflow, outbox_id


async def launch(
    sessions: async_sessionmaker[AsyncSession], hand_over: HandOver, principal: Principal, body: dict[str, Any]
) -> Workflow:
    """Create and commit the workflow, then give it to ``hand_over`` (the app's launch relay),
    which does not wait for the broker.

    The outbox entry committed with the workflow is what makes an accepted workflow never
    lost: if the hand-over fails (the broker is down, the process dies), the clock sends it.
    """
    async with sessions() as session:
        async with session.begin():
            workflow, outbox_id = await create_workflow(session, principal, body)
    log.info("workflow created", workflow_id=workflow.id, identifier=workflow.identifier)
    await hand_over(Launch(workflow.id, outbox_id))
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
