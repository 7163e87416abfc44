"""Workers: the definitions they announce, the live workers of live jobs, their last status.

Rows come from worker messages (``worker_discovery``, ``worker_status``, live-job replies)
through the upserts of ``stepflow.workers``; the API only reads them (and creates
definitions on ``POST /worker_definitions``).
"""

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from stepflow.models.base import Base, created_at_column, utcnow


class WorkerDefinition(Base):
    """What a worker said it is (api.md §7.3): one row per queue and version.

    ``parameters`` is whatever the worker described: a JSON Schema object (SDK 1.x and 2.x)
    or the older list of parameter descriptions. SDK 2.x sends no ``short_description``.
    """

    __tablename__ = "worker_definitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_name: Mapped[str] = mapped_column(String(255))
    label: Mapped[str]
    short_description: Mapped[str] = mapped_column(default="", server_default="")
    description: Mapped[str]
    version: Mapped[str] = mapped_column(String(255))
    parameters: Mapped[Any] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))
    sdk_version: Mapped[str | None] = mapped_column(String(64))
    inserted_at: Mapped[datetime] = created_at_column()

    __table_args__ = (UniqueConstraint("queue_name", "version", name="uq_worker_definitions_queue_version"),)


class LiveWorker(Base):
    """The process running one live (streaming) job (api.md §7.4, §8.8).

    ``direct_messaging_queue_name`` is the worker's identity: the live job's parameters carry
    it, and ``worker_created`` / the job's replies are matched on it.
    """

    __tablename__ = "live_workers"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    ips: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default=text("'{}'::text[]"))
    ports: Mapped[list[int]] = mapped_column(ARRAY(Integer), default=list, server_default=text("'{}'::integer[]"))
    instance_id: Mapped[str] = mapped_column(default="", server_default="")
    direct_messaging_queue_name: Mapped[str]
    creation_date: Mapped[datetime | None]
    termination_date: Mapped[datetime | None]
    inserted_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        UniqueConstraint("direct_messaging_queue_name", name="uq_live_workers_direct_messaging_queue_name"),
    )


class WorkerStatus(Base):
    """The last ``worker_status`` of each worker instance (api.md §7.5, §8.9).

    Missing strings are ``""``; ``current_job`` is ``{"execution_duration", "job_id",
    "status"}`` while the worker is busy, else NULL. ``activity`` is ``Idle``, ``Busy``,
    ``Suspended`` or ``Terminated`` (set when the worker says it stops).
    """

    __tablename__ = "worker_statuses"

    instance_id: Mapped[str] = mapped_column(primary_key=True)
    activity: Mapped[str] = mapped_column(String(32), default="", server_default="")
    current_job: Mapped[dict[str, Any] | None]
    description: Mapped[str] = mapped_column(default="", server_default="")
    direct_messaging_queue_name: Mapped[str] = mapped_column(default="", server_default="")
    label: Mapped[str] = mapped_column(default="", server_default="")
    queue_name: Mapped[str] = mapped_column(default="", server_default="")
    sdk_version: Mapped[str] = mapped_column(default="", server_default="")
    short_description: Mapped[str] = mapped_column(default="", server_default="")
    system_info: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'::jsonb"))
    version: Mapped[str] = mapped_column(default="", server_default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    inserted_at: Mapped[datetime] = created_at_column()
