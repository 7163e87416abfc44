"""``select()`` statements shared by the async web and the sync actors (ours.md A4)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Select, exists, select

from stepflow.models import Right, Workflow, WorkflowDefinition


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
