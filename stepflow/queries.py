"""``select()`` statements shared by the async web and the sync actors (ours.md A4)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, exists, select

from stepflow.models import Job, Progression, Right, Workflow, WorkflowDefinition

BLACK_LIST_DAYS = 7


def workflow_right(action: str, groups: Sequence[str]) -> ColumnElement[bool]:
    """Workflows holding a right for ``action`` shared with one of ``groups``."""
    return exists(
        select(Right.id).where(
            Right.workflow_id == Workflow.id,
            Right.action == action,
            Right.groups.overlap(list(groups)),
        )
    )


def definition_right(action: str, groups: Sequence[str]) -> ColumnElement[bool]:
    """Definitions holding a right for ``action`` shared with one of ``groups``."""
    return exists(
        select(Right.id).where(
            Right.definition_id == WorkflowDefinition.id,
            Right.action == action,
            Right.groups.overlap(list(groups)),
        )
    )


def definition_version(
    identifier: str, version: tuple[int, int, int] | None = None
) -> Select[tuple[WorkflowDefinition]]:
    """The definition with that identifier: one exact version, else the highest."""
    statement = select(WorkflowDefinition).where(WorkflowDefinition.identifier == identifier)
    if version is not None:
        major, minor, micro = version
        statement = statement.where(
            WorkflowDefinition.version_major == major,
            WorkflowDefinition.version_minor == minor,
            WorkflowDefinition.version_micro == micro,
        )
    return statement.order_by(
        WorkflowDefinition.version_major.desc(),
        WorkflowDefinition.version_minor.desc(),
        WorkflowDefinition.version_micro.desc(),
    ).limit(1)


def black_listed_jobs(now: datetime) -> Select[tuple[int]]:
    """Jobs cancelled before they started whose order may still wait in a worker queue
    (ours.md §3.12): stopped by StepFlow, dispatched, never reported by a worker, recent."""
    return (
        select(Job.id)
        .where(
            Job.state == "stopped",
            Job.kind == "worker",
            Job.dispatched_at.is_not(None),
            Job.updated_at >= now - timedelta(days=BLACK_LIST_DAYS),
            ~exists(select(Progression.id).where(Progression.job_id == Job.id)),
        )
        .order_by(Job.id)
    )
