"""``GET /definitions`` (list), ``GET /definitions/:identifier`` and ``POST /definitions``
(reload from disk)."""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated, Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, Parameter
from sqlalchemy import ColumnElement, func, or_, select, tuple_
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stepflow.api.definitions.service import load_definitions
from stepflow.api.errors import invalid, reason
from stepflow.api.query import LIST_FORMS, MAX_INT, Page, as_list, text_filter
from stepflow.api.views import naive
from stepflow.definitions.schema import DefinitionValidator
from stepflow.models import WorkflowDefinition
from stepflow.queries import definition_right, definition_version
from stepflow.security import Principal, has_right
from stepflow.settings import Settings


def simple_view(definition: WorkflowDefinition) -> dict[str, Any]:
    """api.md §8.6 "simple" (``mode=simple``): what every definition view starts with."""
    return {
        "id": definition.id,
        "identifier": definition.identifier,
        "is_live": definition.is_live,
        "label": definition.label,
        "version_major": definition.version_major,
        "version_minor": definition.version_minor,
        "version_micro": definition.version_micro,
    }


def _described(definition: WorkflowDefinition) -> dict[str, Any]:
    return {
        **simple_view(definition),
        "icon": definition.icon,
        "tags": definition.tags,
        "start_parameters": definition.start_parameters,
        "parameters": definition.parameters,
    }


def full_view(definition: WorkflowDefinition) -> dict[str, Any]:
    """api.md §8.6 "full" (the list's default): no ``steps`` nor ``rights``."""
    return {**_described(definition), "schema_version": definition.schema_version}


def with_steps_view(definition: WorkflowDefinition) -> dict[str, Any]:
    """api.md §8.6 "with_steps" (no ``schema_version`` nor ``rights``, as the original)."""
    return {**_described(definition), "steps": definition.steps, "created_at": naive(definition.inserted_at)}


_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
VERSION_ORDER = (
    WorkflowDefinition.version_major.desc(),
    WorkflowDefinition.version_minor.desc(),
    WorkflowDefinition.version_micro.desc(),
)


def _versions(values: list[str] | None) -> str | list[tuple[int, int, int]] | None:
    """``["latest"]`` → ``"latest"``; ``"M.m.p"`` strings → their tuples; nothing → None."""
    if values is None:
        return None
    if values == ["latest"]:
        return "latest"
    versions = []
    for value in values:
        match = _VERSION.match(value)
        if match is None:
            raise invalid("versions", 'is invalid: expected ["latest"] or "major.minor.micro" versions')
        major, minor, micro = match.groups()
        versions.append((int(major), int(minor), int(micro)))
    return versions


def _mode(values: list[str] | None) -> str:
    chosen = set(values or ["full"])
    if len(chosen) != 1 or not chosen <= {"full", "simple"}:
        raise invalid("mode", "must be full or simple")
    return chosen.pop()


@get("/definitions")
async def list_definitions(
    request: Request,
    session: NamedDependency[AsyncSession],
    principal: NamedDependency[Principal],
    page: Page = 0,
    size: Annotated[int, Parameter(ge=-1, le=MAX_INT, description="Page size; -1 = every definition.")] = 10,
    right_action: Annotated[
        str, Parameter(description="The right the user must hold (`create` lists launchable definitions).")
    ] = "view",
    versions: Annotated[
        list[str] | None,
        Parameter(description=f'`latest` (the highest version per identifier) or "M.m.p" versions. {LIST_FORMS}'),
    ] = None,
    search: Annotated[
        str | None, Parameter(description="Label contains (case-insensitive), or identifier equals (ILIKE).")
    ] = None,
    mode: Annotated[list[str] | None, Parameter(description="`full` (default) or `simple`.")] = None,
) -> dict[str, Any]:
    """Definitions the user holds ``right_action`` on (api.md §5.1), highest version first."""
    if size == 0:
        raise invalid("size", "is invalid: expected -1 or a positive size")
    view = simple_view if _mode(as_list(request, "mode", mode)) == "simple" else full_view
    wanted = _versions(as_list(request, "versions", versions))
    action = text_filter("right_action", right_action) or "view"
    conditions: list[ColumnElement[bool]] = [definition_right(action, principal.groups)]
    pattern = text_filter("search", search)
    if pattern:
        # The original's patterns: % and _ stay wildcards; a backslash is taken literally.
        pattern = pattern.replace("\\", "\\\\")
        conditions.append(
            or_(WorkflowDefinition.label.ilike(f"%{pattern}%"), WorkflowDefinition.identifier.ilike(pattern))
        )
    if wanted == "latest":
        latest = (
            select(WorkflowDefinition.id)
            .where(*conditions)
            .ext(distinct_on(WorkflowDefinition.identifier))
            .order_by(WorkflowDefinition.identifier, *VERSION_ORDER)
        )
        conditions = [WorkflowDefinition.id.in_(latest)]
    elif wanted:
        columns = tuple_(
            WorkflowDefinition.version_major, WorkflowDefinition.version_minor, WorkflowDefinition.version_micro
        )
        conditions.append(columns.in_(wanted))
    total = await session.scalar(select(func.count()).select_from(WorkflowDefinition).where(*conditions))
    statement = select(WorkflowDefinition).where(*conditions).order_by(*VERSION_ORDER, WorkflowDefinition.id)
    if size > 0:
        statement = statement.offset(page * size).limit(size)
    definitions = await session.scalars(statement)
    return {"data": [view(definition) for definition in definitions], "total": total or 0}


@get("/definitions/{identifier:str}")
async def show_definition(
    identifier: FromPath[str], session: NamedDependency[AsyncSession], principal: NamedDependency[Principal]
) -> dict[str, Any]:
    """The latest version of a definition, if the user may ``view`` it."""
    definition = await session.scalar(definition_version(identifier))
    if definition is None:
        raise reason(422, "Unable to locate workflow with this identifier")
    await session.refresh(definition, ["rights"])
    if not has_right(definition.rights, principal, "view"):
        raise reason(403, "Forbidden to access workflow definition with this identifier")
    return {"data": with_steps_view(definition)}


@post("/definitions", status_code=200)
async def reload_definitions(
    sessions: NamedDependency[async_sessionmaker[AsyncSession]],
    settings: NamedDependency[Settings],
    validator: NamedDependency[DefinitionValidator],
    principal: NamedDependency[Principal],
) -> Response:
    """Read the configured folders again; reports loaded, skipped and invalid files."""
    async with sessions() as session, session.begin():
        outcome = await load_definitions(session, settings, validator)
    return Response(content=dataclasses.asdict(outcome), status_code=200)


ROUTES = [list_definitions, show_definition, reload_definitions]
