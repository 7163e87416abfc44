"""Jobs (one per workflow, step and input), their status history and progressions."""

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from stepflow.engine.states import JobState
from stepflow.models.base import Base, created_at_column, utcnow


class Job(Base):
    """One unit of work of a step.

    ``(workflow_id, step_id, input_index)`` is unique, so replaying a launch creates nothing
    new. ``parameters`` is the job order sent to the worker (plus outputs appended on
    completion). ``dispatched_at`` is NULL until the broker confirmed the order: the clock
    re-sends such jobs, which makes the jobs table the outbox of job orders. ``send_after``
    holds such a re-send back (the backoff of an order a busy worker refused).
    """

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    step_id: Mapped[int]
    input_index: Mapped[int]
    name: Mapped[str] = mapped_column(String(255))
    parameters: Mapped[list[Any]] = mapped_column(default=list)
    kind: Mapped[str] = mapped_column(String(16), default="worker")
    state: Mapped[str] = mapped_column(String(16), default=JobState.QUEUED)
    attempt: Mapped[int] = mapped_column(default=1)
    is_live: Mapped[bool] = mapped_column(default=False)
    dispatched_at: Mapped[datetime | None]
    send_after: Mapped[datetime | None]
    inserted_at: Mapped[datetime] = created_at_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("workflow_id", "step_id", "input_index", name="uq_jobs_workflow_step_input"),
        Index("ix_jobs_name", "name"),
        Index("ix_jobs_inserted_at_id", text("inserted_at DESC"), text("id DESC")),
        Index(
            "ix_jobs_undispatched",
            "updated_at",
            postgresql_where=text("dispatched_at IS NULL AND state IN ('queued', 'retrying')"),
        ),
        # stepflow_jobs_in_flight (stepflow.metrics.state) reads only these.
        Index(
            "ix_jobs_in_flight",
            "name",
            postgresql_where=text("kind = 'worker' AND state NOT IN ('completed', 'error', 'skipped', 'stopped')"),
        ),
    )


class JobStatus(Base):
    """Append-only job history: every state change and every message that only informs."""

    __tablename__ = "job_status"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16))
    description: Mapped[dict[str, Any]] = mapped_column(default=dict)
    inserted_at: Mapped[datetime] = created_at_column()


class Progression(Base):
    """Append-only progression reports from workers (percent)."""

    __tablename__ = "progressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    reported_at: Mapped[datetime] = mapped_column("datetime")
    docker_container_id: Mapped[str] = mapped_column(default="")
    progression: Mapped[int]
    inserted_at: Mapped[datetime] = created_at_column()

    # A redelivered progression carries the same worker timestamp: it is stored once.
    __table_args__ = (UniqueConstraint("job_id", "datetime", "progression"),)


class Update(Base):
    """Append-only record of an ``update`` event: the parameter values it set on a job."""

    __tablename__ = "updates"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    reported_at: Mapped[datetime] = mapped_column("datetime", default=utcnow)
    parameters: Mapped[list[Any]]
    inserted_at: Mapped[datetime] = created_at_column()
