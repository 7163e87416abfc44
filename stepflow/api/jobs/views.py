"""Job JSON view (api.md §8.4): ``params``, its status history and progressions."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from stepflow.api.views import naive, utc
from stepflow.models import Job, JobStatus, Progression


async def job_views(session: AsyncSession, jobs: list[Job]) -> list[dict[str, Any]]:
    """Views of ``jobs`` with their histories, in two queries whatever their number."""
    ids = [job.id for job in jobs]
    statuses: dict[int, list[dict[str, Any]]] = defaultdict(list)
    progressions: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if ids:
        for status in await session.scalars(select(JobStatus).where(JobStatus.job_id.in_(ids)).order_by(JobStatus.id)):
            statuses[status.job_id].append(
                {
                    "id": status.id,
                    "state": status.state,
                    "description": status.description,
                    "inserted_at": naive(status.inserted_at),
                }
            )
        for progression in await session.scalars(
            select(Progression).where(Progression.job_id.in_(ids)).order_by(Progression.id)
        ):
            progressions[progression.job_id].append(
                {
                    "id": progression.id,
                    "datetime": utc(progression.reported_at),
                    "docker_container_id": progression.docker_container_id,
                    "job_id": progression.job_id,
                    "progression": progression.progression,
                }
            )
    return [
        {
            "id": job.id,
            "workflow_id": job.workflow_id,
            "name": job.name,
            "step_id": job.step_id,
            "state": job.state,
            "params": job.parameters,
            "status": statuses[job.id],
            "progressions": progressions[job.id],
            "inserted_at": naive(job.inserted_at),
            "updated_at": naive(job.updated_at),
        }
        for job in jobs
    ]
