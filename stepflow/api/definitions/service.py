"""Storing the definitions read from disk (at start and on ``POST /definitions``).

Besides the document, a stored definition carries what the engine reads directly:

* ``rights``: those of the document (1.8), else, since 1.9 dropped them from the standard,
  ``STEPFLOW_RIGHTS_OVERRIDES[identifier]`` or ``STEPFLOW_DEFAULT_RIGHTS``;
* ``notification_hooks``: the document's hooks normalised (``stepflow.definitions.hooks``).

Both are copied to a workflow at launch.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from stepflow.definitions.hooks import HookError, normalise_hooks, unknown_credentials
from stepflow.definitions.loader import LoadedDefinition, read_definition_folders
from stepflow.definitions.schema import DefinitionValidator
from stepflow.models import Right, WorkflowDefinition
from stepflow.queries import definition_version
from stepflow.settings import Settings

log = structlog.get_logger(__name__)


@dataclass
class LoadOutcome:
    """``POST /definitions`` body (ours.md A11): what is stored, kept, or refused, by file."""

    loaded: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[dict[str, str]] = field(default_factory=list)


def definition_rights(document: Mapping[str, Any], settings: Settings) -> list[dict[str, Any]]:
    """The rights of a definition: its own (1.8), else the settings' for its identifier (1.9+).

    A document with a ``rights`` key keeps it even past 1.8 (a site schema may allow it); without
    one, ``STEPFLOW_RIGHTS_OVERRIDES[identifier]`` wins over ``STEPFLOW_DEFAULT_RIGHTS``.
    """
    if "rights" in document:
        rights: Sequence[Mapping[str, Any]] = document["rights"]
    else:
        rights = settings.rights_overrides.get(document["identifier"], settings.default_rights)
    return [{"action": right["action"], "groups": list(right["groups"])} for right in rights]


def _definition(
    loaded: LoadedDefinition, rights: list[dict[str, Any]], hooks: list[dict[str, Any]]
) -> WorkflowDefinition:
    document = loaded.document
    return WorkflowDefinition(
        schema_version=document["schema_version"],
        identifier=document["identifier"],
        label=document.get("label", ""),
        icon=document.get("icon", ""),
        version_major=document["version_major"],
        version_minor=document["version_minor"],
        version_micro=document["version_micro"],
        tags=document.get("tags", []),
        is_live=bool(document.get("is_live", False)),
        steps=document.get("steps", []),
        start_parameters=document.get("start_parameters", []),
        parameters=document.get("parameters", []),
        notification_hooks=hooks,
        document=document,
        source_file=loaded.file,
        rights=[Right(action=right["action"], groups=right["groups"]) for right in rights],
    )


def _hooks(loaded: LoadedDefinition, known_credentials: Collection[str]) -> list[dict[str, Any]] | str:
    """The normalised hooks, or the one-line reason the file is invalid (including a
    ``credentials`` name that ``STEPFLOW_NOTIFICATION_CREDENTIALS`` does not define)."""
    try:
        hooks = normalise_hooks(loaded.document)
    except HookError as error:  # the validator's semantic checks already refuse these
        return str(error)
    errors = unknown_credentials(hooks, known_credentials)
    return "; ".join(errors) if errors else hooks


async def load_definitions(session: AsyncSession, settings: Settings, validator: DefinitionValidator) -> LoadOutcome:
    """Read every folder of ``settings.workflow_definitions`` and insert new definitions; the caller commits.

    An identifier + version already stored with the same content counts as loaded; with a
    different content the stored one is kept and the file is listed as skipped (A11). A stored
    definition with the same content gets its rights and hooks refreshed when they changed: the
    rights of a 1.9+ definition follow the settings from one load to the next.
    """
    credentials = set(settings.notification_credentials)
    report = await anyio.to_thread.run_sync(read_definition_folders, list(settings.workflow_definitions), validator)
    outcome = LoadOutcome()
    for bad in report.invalid:
        log.warning("invalid workflow definition", file=bad.file, error=bad.error)
        outcome.invalid.append({"file": bad.file, "error": bad.error})
    for loaded in report.loaded:
        document = loaded.document
        hooks = _hooks(loaded, credentials)
        if isinstance(hooks, str):
            log.warning("invalid workflow definition", file=loaded.file, error=hooks)
            outcome.invalid.append({"file": loaded.file, "error": hooks})
            continue
        rights = definition_rights(document, settings)
        version = (document["version_major"], document["version_minor"], document["version_micro"])
        entry = {
            "file": loaded.file,
            "identifier": document["identifier"],
            "version": ".".join(str(part) for part in version),
        }
        for warning in loaded.warnings:
            log.warning("workflow definition warning", file=loaded.file, warning=warning)
        stored = await session.scalar(definition_version(document["identifier"], version))
        if stored is None:
            session.add(_definition(loaded, rights, hooks))
            await session.flush()
            outcome.loaded.append(entry)
        elif stored.document == document:
            await _refresh(session, stored, rights, hooks)
            outcome.loaded.append(entry)
        else:
            log.warning("definition already stored with other content, kept", **entry, stored_file=stored.source_file)
            outcome.skipped.append({**entry, "reason": "identifier and version already stored with other content"})
    return outcome


async def _refresh(
    session: AsyncSession, stored: WorkflowDefinition, rights: list[dict[str, Any]], hooks: list[dict[str, Any]]
) -> None:
    """Bring the rights and hooks of an unchanged stored definition up to date (settings, normalisation)."""
    await session.refresh(stored, ["rights"])
    if [{"action": right.action, "groups": list(right.groups)} for right in stored.rights] != rights:
        log.info("definition rights updated", identifier=stored.identifier, version=stored.version)
        stored.rights = [Right(action=right["action"], groups=right["groups"]) for right in rights]
    if stored.notification_hooks != hooks:
        stored.notification_hooks = hooks
    await session.flush()
