"""Job JSON view (api.md §8.4): ``params``, its status history and progressions.

Lists show hundreds of jobs per page with their histories, so PostgreSQL builds the JSON
(``json_build_object`` over indexed sub-selects) and the response embeds it as is
(``msgspec.Raw``): no row objects, no decoding and re-encoding in Python.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from sqlalchemy import ColumnElement, Text, cast, func, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

from stepflow.models import Job, JobStatus, Progression
from stepflow.queries import among

_EMPTY = literal_column("'[]'::json")


def naive_sql(column: ColumnElement) -> ColumnElement[str]:
    """``YYYY-MM-DDTHH:MM:SS`` in UTC, like ``stepflow.api.views.naive``, in SQL."""
    return func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS')


def _history(entry: ColumnElement, order: ColumnElement, job_column: ColumnElement) -> ColumnElement:
    return (
        select(func.coalesce(func.json_agg(aggregate_order_by(entry, order)), _EMPTY))
        .where(job_column == Job.id)
        .scalar_subquery()
    )


JOB_JSON = func.json_build_object(
    "id",
    Job.id,
    "workflow_id",
    Job.workflow_id,
    "name",
    Job.name,
    "step_id",
    Job.step_id,
    "state",
    Job.state,
    "params",
    Job.parameters,
    "status",
    _history(
        func.json_build_object(
            "id",
            JobStatus.id,
            "state",
            JobStatus.state,
            "description",
            JobStatus.description,
            "inserted_at",
            naive_sql(JobStatus.inserted_at),
        ),
        JobStatus.id,
        JobStatus.job_id,
    ),
    "progressions",
    _history(
        func.json_build_object(
            "id",
            Progression.id,
            "datetime",
            naive_sql(Progression.reported_at).concat("Z"),
            "docker_container_id",
            Progression.docker_container_id,
            "job_id",
            Progression.job_id,
            "progression",
            Progression.progression,
        ),
        Progression.id,
        Progression.job_id,
    ),
    "inserted_at",
    naive_sql(Job.inserted_at),
    "updated_at",
    naive_sql(Job.updated_at),
)
"""One job's view as a JSON value."""


async def job_views(session: AsyncSession, job_ids: Sequence[int]) -> list[msgspec.Raw]:
    """Views of these jobs, in the order given, in one query."""
    if not job_ids:
        return []
    rows = await session.execute(select(Job.id, cast(JOB_JSON, Text)).where(among(Job.id, job_ids)))
    views = {job_id: msgspec.Raw(text.encode()) for job_id, text in rows}
    return [views[job_id] for job_id in job_ids if job_id in views]


async def job_views_by_workflow(session: AsyncSession, workflow_ids: Sequence[int]) -> dict[int, msgspec.Raw]:
    """For each workflow, the JSON array of its jobs' views (by job id), in one query."""
    if not workflow_ids:
        return {}
    rows = await session.execute(
        select(Job.workflow_id, cast(func.json_agg(aggregate_order_by(JOB_JSON, Job.id)), Text))
        .where(among(Job.workflow_id, workflow_ids))
        .group_by(Job.workflow_id)
    )
    return {workflow_id: msgspec.Raw(text.encode()) for workflow_id, text in rows}
