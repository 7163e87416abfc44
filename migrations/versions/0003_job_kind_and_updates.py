"""Job kind (worker or notification), parameter updates, retrying jobs in the dispatch index

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("kind", sa.String(length=16), nullable=False, server_default="worker"))
    op.drop_index("ix_jobs_undispatched", table_name="jobs")
    op.create_index(
        "ix_jobs_undispatched",
        "jobs",
        ["updated_at"],
        postgresql_where=sa.text("dispatched_at IS NULL AND state IN ('queued', 'retrying')"),
    )
    op.create_table(
        "updates",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("datetime", sa.DateTime(timezone=True), nullable=False),
        sa.Column("parameters", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("inserted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_updates_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_updates")),
    )
    op.create_index(op.f("ix_updates_job_id"), "updates", ["job_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_updates_job_id"), table_name="updates")
    op.drop_table("updates")
    op.drop_index("ix_jobs_undispatched", table_name="jobs")
    op.create_index(
        "ix_jobs_undispatched",
        "jobs",
        ["inserted_at"],
        postgresql_where=sa.text("dispatched_at IS NULL AND state = 'queued'"),
    )
    op.drop_column("jobs", "kind")
