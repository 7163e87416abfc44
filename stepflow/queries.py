"""``select()`` statements shared by the async web and the sync actors (ours.md A4)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import BigInteger, ColumnElement, Select, any_, bindparam, cast, exists, func, select
from sqlalchemy.dialects.postgresql import ARRAY

from stepflow.engine.states import JobState
from stepflow.models import Job, Progression, Right, Workflow, WorkflowCounter, WorkflowDefinition

BLACK_LIST_DAYS = 7


def among(column: ColumnElement[int], ids: Sequence[int]) -> ColumnElement[bool]:
    """``column = ANY(:ids)`` with the ids sent as one array parameter: unlike ``IN (…)``, the
    statement is the same whatever the number of ids (no re-parsing per size)."""
    return column == any_(bindparam(None, list(ids), type_=ARRAY(BigInteger)))


def visible_workflows(groups: Sequence[str]) -> ColumnElement[bool]:
    """Workflows one of ``groups`` may view (the groups of their view rights, fixed at launch)."""
    return Workflow.view_groups.overlap(list(groups))


def visible_workflow_count(groups: Sequence[str]) -> Select[tuple[int]]:
    """How many workflows ``groups`` may view, from the trigger-kept counters (no other filter)."""
    return select(cast(func.coalesce(func.sum(WorkflowCounter.count), 0), BigInteger)).where(
        WorkflowCounter.view_groups.overlap(list(groups))
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
    identifier: str | ColumnElement[str], version: Sequence[int | ColumnElement[int]] | None = None
) -> Select[tuple[WorkflowDefinition]]:
    """The definition with that identifier: one exact version, else the highest (values, or
    bound parameters for a statement built once)."""
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
    (ours.md §3.12): stopped by StepFlow, never reported by a worker, recent. Whether its order
    was marked dispatched does not matter: marks are written after the order is confirmed."""
    return (
        select(Job.id)
        .where(
            Job.state == JobState.STOPPED,
            Job.kind == "worker",
            Job.updated_at >= now - timedelta(days=BLACK_LIST_DAYS),
            ~exists(select(Progression.id).where(Progression.job_id == Job.id)),
        )
        .order_by(Job.id)
    )
