"""Storing the definitions read from disk (at start and on ``POST /definitions``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from stepflow.definitions.loader import LoadedDefinition, read_definition_folders
from stepflow.definitions.schema import DefinitionValidator
from stepflow.models import Right, WorkflowDefinition
from stepflow.queries import definition_version

log = structlog.get_logger(__name__)


@dataclass
class LoadOutcome:
    """``POST /definitions`` body (ours.md A11): what is stored, kept, or refused, by file."""

    loaded: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[dict[str, str]] = field(default_factory=list)


def _definition(loaded: LoadedDefinition) -> WorkflowDefinition:
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
        document=document,
        source_file=loaded.file,
        rights=[Right(action=right["action"], groups=list(right["groups"])) for right in document.get("rights", [])],
    )


async def load_definitions(
    session: AsyncSession, folders: Sequence[Path], validator: DefinitionValidator
) -> LoadOutcome:
    """Read every folder and insert new definitions; the caller commits.

    An identifier + version already stored with the same content counts as loaded; with a
    different content the stored one is kept and the file is listed as skipped (A11).
    """
    report = await anyio.to_thread.run_sync(read_definition_folders, list(folders), validator)
    outcome = LoadOutcome()
    for bad in report.invalid:
        log.warning("invalid workflow definition", file=bad.file, error=bad.error)
        outcome.invalid.append({"file": bad.file, "error": bad.error})
    for loaded in report.loaded:
        document = loaded.document
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
            session.add(_definition(loaded))
            await session.flush()
            outcome.loaded.append(entry)
        elif stored.document == document:
            outcome.loaded.append(entry)
        else:
            log.warning("definition already stored with other content, kept", **entry, stored_file=stored.source_file)
            outcome.skipped.append({**entry, "reason": "identifier and version already stored with other content"})
    return outcome
