"""Rights: ``{action, groups}`` pairs attached to a definition or to a workflow."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from stepflow.models.base import Base, created_at_column


class Right(Base):
    """One right. A user holds it when one of ``groups`` is among the user's groups.

    Exactly one of ``definition_id`` / ``workflow_id`` is set: a workflow gets copies of its
    definition's rights at launch, so later definition changes never widen access.
    """

    __tablename__ = "rights"

    id: Mapped[int] = mapped_column(primary_key=True)
    definition_id: Mapped[int | None] = mapped_column(
        ForeignKey("workflow_definitions.id", ondelete="CASCADE"), index=True
    )
    workflow_id: Mapped[int | None] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(32))
    groups: Mapped[list[str]] = mapped_column(ARRAY(Text))
    inserted_at: Mapped[datetime] = created_at_column()

    __table_args__ = (
        Index("ix_rights_workflow_action", "workflow_id", "action"),
        Index("ix_rights_groups", "groups", postgresql_using="gin"),
        Index(
            "ix_rights_workflow_action_groups",
            "action",
            "workflow_id",
            postgresql_include=["groups"],
            postgresql_where=text("workflow_id IS NOT NULL"),
        ),
    )
