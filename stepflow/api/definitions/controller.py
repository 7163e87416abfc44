"""``GET /definitions/:identifier`` and ``POST /definitions`` (reload from disk)."""

from __future__ import annotations

import dataclasses
from typing import Any

from litestar import Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from stepflow.api.definitions.service import load_definitions
from stepflow.api.errors import reason
from stepflow.api.views import naive
from stepflow.definitions.schema import DefinitionValidator
from stepflow.models import WorkflowDefinition
from stepflow.queries import definition_version
from stepflow.security import Principal, has_right
from stepflow.settings import Settings


def with_steps_view(definition: WorkflowDefinition) -> dict[str, Any]:
    """api.md §8.6 "with_steps" (no ``schema_version`` nor ``rights``, as the original)."""
    return {
        "id": definition.id,
        "identifier": definition.identifier,
        "is_live": definition.is_live,
        "label": definition.label,
        "icon": definition.icon,
        "version_major": definition.version_major,
        "version_minor": definition.version_minor,
        "version_micro": definition.version_micro,
        "tags": definition.tags,
        "start_parameters": definition.start_parameters,
        "parameters": definition.parameters,
        "steps": definition.steps,
        "created_at": naive(definition.inserted_at),
    }


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


ROUTES = [show_definition, reload_definitions]
