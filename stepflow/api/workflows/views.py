"""Workflow JSON views (api.md §8.1–8.3), plus the additive ``status`` and ``stopped`` keys."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stepflow.api.jobs.views import job_views_by_workflow
from stepflow.api.views import naive, right_view
from stepflow.engine.status import StepCounts, allows_failure, step_status
from stepflow.models import Artifact, Workflow, WorkflowStatus, WorkflowStep
from stepflow.queries import among


def created_view(workflow: Workflow) -> dict[str, Any]:
    return {
        "schema_version": workflow.schema_version,
        "id": workflow.id,
        "identifier": workflow.identifier,
        "version_major": workflow.version_major,
        "version_minor": workflow.version_minor,
        "version_micro": workflow.version_micro,
        "tags": workflow.tags,
        "reference": workflow.reference,
        "parameters": workflow.parameters,
        "created_at": naive(workflow.inserted_at),
    }


def step_view(step: dict[str, Any], row: WorkflowStep | None) -> dict[str, Any]:
    counts = (
        StepCounts(row.queued, row.processing, row.completed, row.errors, row.skipped, row.stopped)
        if row is not None
        else StepCounts()
    )
    return {**step, "jobs": counts.as_view(), "status": step_status(counts, allows_failure(step))}


NO_JOBS = msgspec.Raw(b"[]")


async def full_views(session: AsyncSession, workflows: Sequence[Workflow]) -> list[dict[str, Any]]:
    """Full views of ``workflows`` (api.md §8.1) in a fixed number of queries, whatever their
    number: step counters, jobs, job statuses, progressions and artifacts, each in one query
    for all of them. Rights must already be loaded on each workflow (``selectinload`` or
    ``refresh``)."""
    ids = [workflow.id for workflow in workflows]
    if not ids:
        return []
    counters: dict[int, dict[int, WorkflowStep]] = defaultdict(dict)
    for row in await session.scalars(select(WorkflowStep).where(among(WorkflowStep.workflow_id, ids))):
        counters[row.workflow_id][row.step_id] = row
    views_of_jobs = await job_views_by_workflow(session, ids)
    artifacts: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for artifact in await session.scalars(
        select(Artifact).where(among(Artifact.workflow_id, ids)).order_by(Artifact.id)
    ):
        artifacts[artifact.workflow_id].append(
            {"id": artifact.id, "resources": artifact.resources, "inserted_at": naive(artifact.inserted_at)}
        )
    return [
        {
            **created_view(workflow),
            "is_live": workflow.is_live,
            "status": workflow.status,
            "steps": [step_view(step, counters[workflow.id].get(step["id"])) for step in workflow.steps],
            "artifacts": artifacts[workflow.id],
            "jobs": views_of_jobs.get(workflow.id, NO_JOBS),
            "rights": [right_view(right) for right in workflow.rights],
        }
        for workflow in workflows
    ]


async def full_view(session: AsyncSession, workflow: Workflow) -> dict[str, Any]:
    return (await full_views(session, [workflow]))[0]


async def simple_view(session: AsyncSession, workflow: Workflow) -> dict[str, Any]:
    last = await session.scalar(
        select(WorkflowStatus)
        .where(WorkflowStatus.workflow_id == workflow.id)
        .order_by(WorkflowStatus.id.desc())
        .limit(1)
    )
    return {
        "created_at": naive(workflow.inserted_at),
        "id": workflow.id,
        "identifier": workflow.identifier,
        "is_live": workflow.is_live,
        "schema_version": workflow.schema_version,
        "version_major": workflow.version_major,
        "version_minor": workflow.version_minor,
        "version_micro": workflow.version_micro,
        "status": (
            {"id": last.id, "state": last.state, "inserted_at": naive(last.inserted_at)} if last is not None else None
        ),
    }
