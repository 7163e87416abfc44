"""Messages that must follow a commit, kept until the consumer's own transaction deletes them."""

from datetime import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from stepflow.models.base import Base, created_at_column


class Outbox(Base):
    """An actor message owed after a commit (for example ``launch_workflow``).

    The web process inserts the row with its workflow, and its launch relay sets ``sent_at``
    once the broker confirmed the message; the actor deletes the row in the transaction that
    does the work; the clock re-sends rows that stay too long after ``sent_at`` (or
    ``inserted_at`` when never sent).
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    inserted_at: Mapped[datetime] = created_at_column()
    sent_at: Mapped[datetime | None]
