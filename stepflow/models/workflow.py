"""Workflow instances, their per-step counters, status history and artifacts."""

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, ForeignKey, Index, SmallInteger, String, Text, event, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from stepflow.engine.states import WorkflowState
from stepflow.models.base import Base, created_at_column, utcnow
from stepflow.models.right import Right

if TYPE_CHECKING:
    from stepflow.security import RightLike


class Workflow(Base):
    """A running (or finished) copy of a definition.

    ``status`` is the current workflow status (pending, processing, paused, error, completed,
    aborted); ``workflow_status`` holds its history. ``steps`` and ``parameters`` are copied
    from the definition at launch; job outputs are appended to ``parameters``.
    """

    __tablename__ = "workflows"

    id: Mapped[int] = mapped_column(primary_key=True)
    definition_id: Mapped[int | None] = mapped_column(ForeignKey("workflow_definitions.id", ondelete="SET NULL"))
    schema_version: Mapped[str] = mapped_column(String(16))
    identifier: Mapped[str] = mapped_column(String(255), index=True)
    version_major: Mapped[int]
    version_minor: Mapped[int]
    version_micro: Mapped[int]
    tags: Mapped[list[Any]] = mapped_column(default=list)
    is_live: Mapped[bool] = mapped_column(default=False)
    reference: Mapped[str]
    steps: Mapped[list[Any]] = mapped_column(default=list)
    parameters: Mapped[list[Any]] = mapped_column(default=list)
    notification_hooks: Mapped[list[Any]] = mapped_column(default=list, server_default=text("'[]'::jsonb"))
    status: Mapped[str] = mapped_column(String(16), default=WorkflowState.PENDING, index=True)
    counters_version: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    """Bumped by every transaction that writes the step counters (``workflow_steps``): a
    process may keep the counters it read for a version (``CountersCache``)."""
    # The groups of the workflow's view rights, fixed at launch: lists filter and count on it.
    view_groups: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    inserted_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    rights: Mapped[list[Right]] = relationship(order_by=Right.id, cascade="all, delete-orphan", passive_deletes=True)

    __table_args__ = (
        Index("ix_workflows_inserted_at_id", text("inserted_at DESC"), text("id DESC")),
        Index("ix_workflows_view_groups", "view_groups", postgresql_using="gin"),
        Index(
            "ix_workflows_reference_trgm",
            "reference",
            postgresql_using="gin",
            postgresql_ops={"reference": "gin_trgm_ops"},
        ),
        Index(
            "ix_workflows_identifier_trgm",
            "identifier",
            postgresql_using="gin",
            postgresql_ops={"identifier": "gin_trgm_ops"},
        ),
    )


def view_groups(rights: "Iterable[RightLike]") -> list[str]:
    """``workflows.view_groups`` for these rights: the groups of the ``view`` ones, sorted."""
    return sorted({group for right in rights if right.action == "view" for group in right.groups})


@event.listens_for(Workflow, "before_insert")
def _fix_view_groups(mapper: object, connection: object, workflow: Workflow) -> None:
    """A workflow's rights are copied at launch and never change: so are its view groups."""
    workflow.view_groups = view_groups(workflow.rights)


class WorkflowStep(Base):
    """Per-step job counters of one workflow, updated in the transaction that moves a job.

    Each job is in exactly one bucket; ``total`` is their sum. The step status and whether
    the step is satisfied derive from these numbers alone (``stepflow.engine.status``).
    """

    __tablename__ = "workflow_steps"

    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"), primary_key=True)
    step_id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    queued: Mapped[int] = mapped_column(default=0)
    processing: Mapped[int] = mapped_column(default=0)
    completed: Mapped[int] = mapped_column(default=0)
    errors: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    stopped: Mapped[int] = mapped_column(default=0)
    launched_at: Mapped[datetime | None]


class WorkflowStatus(Base):
    """Append-only workflow status history; one row per change of ``workflows.status``."""

    __tablename__ = "workflow_status"

    id: Mapped[int] = mapped_column(primary_key=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    job_status_id: Mapped[int | None] = mapped_column(ForeignKey("job_status.id", ondelete="SET NULL"))
    inserted_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        Index("ix_workflow_status_inserted_at", "inserted_at", postgresql_include=["state", "workflow_id"]),
    )


class Artifact(Base):
    """Created once, when a workflow completes."""

    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"), index=True)
    resources: Mapped[dict[str, Any]] = mapped_column(default=dict)
    inserted_at: Mapped[datetime] = created_at_column()

    # The window of stepflow_workflow_duration_window_seconds (stepflow.metrics.state).
    __table_args__ = (Index("ix_artifacts_inserted_at", "inserted_at", postgresql_include=["workflow_id"]),)


class WorkflowCounter(Base):
    """How many workflows each set of view groups has, kept by database triggers on ``workflows``.

    An unfiltered list's total is a sum over a few rows instead of a count over every
    workflow. Each set is split over ``COUNTER_SLOTS`` rows (slot = workflow id modulo) so
    concurrent launches do not wait on one counter row.
    """

    __tablename__ = "workflow_counters"

    view_groups: Mapped[list[str]] = mapped_column(ARRAY(Text), primary_key=True)
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
