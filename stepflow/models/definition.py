"""Workflow definitions, loaded from disk; unique per identifier and version."""

from datetime import datetime
from typing import Any

from sqlalchemy import String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from stepflow.models.base import Base, created_at_column
from stepflow.models.right import Right


class WorkflowDefinition(Base):
    __tablename__ = "workflow_definitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    schema_version: Mapped[str] = mapped_column(String(16))
    identifier: Mapped[str] = mapped_column(String(255), index=True)
    label: Mapped[str] = mapped_column(default="")
    icon: Mapped[str] = mapped_column(default="")
    version_major: Mapped[int]
    version_minor: Mapped[int]
    version_micro: Mapped[int]
    tags: Mapped[list[Any]] = mapped_column(default=list)
    is_live: Mapped[bool] = mapped_column(default=False)
    steps: Mapped[list[Any]] = mapped_column(default=list)
    start_parameters: Mapped[list[Any]] = mapped_column(default=list)
    parameters: Mapped[list[Any]] = mapped_column(default=list)
    notification_hooks: Mapped[list[Any]] = mapped_column(default=list, server_default=text("'[]'::jsonb"))
    document: Mapped[dict[str, Any]]
    source_file: Mapped[str] = mapped_column(default="")
    inserted_at: Mapped[datetime] = created_at_column()

    rights: Mapped[list[Right]] = relationship(order_by=Right.id, cascade="all, delete-orphan", passive_deletes=True)

    __table_args__ = (
        UniqueConstraint("identifier", "version_major", "version_minor", "version_micro", name="uq_definition_version"),
    )

    @property
    def version(self) -> str:
        return f"{self.version_major}.{self.version_minor}.{self.version_micro}"
