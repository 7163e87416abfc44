"""Workers: worker definitions, live workers, worker statuses

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_definitions",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("queue_name", sa.String(length=255), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("short_description", sa.String(), nullable=False, server_default=""),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("version", sa.String(length=255), nullable=False),
        sa.Column(
            "parameters",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
        ),
        sa.Column("sdk_version", sa.String(length=64), nullable=True),
        sa.Column("inserted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_definitions")),
        sa.UniqueConstraint("queue_name", "version", name="uq_worker_definitions_queue_version"),
    )
    op.create_table(
        "live_workers",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=False),
        sa.Column("ips", postgresql.ARRAY(sa.Text()), nullable=False, server_default=sa.text("'{}'::text[]")),
        sa.Column("ports", postgresql.ARRAY(sa.Integer()), nullable=False, server_default=sa.text("'{}'::integer[]")),
        sa.Column("instance_id", sa.String(), nullable=False, server_default=""),
        sa.Column("direct_messaging_queue_name", sa.String(), nullable=False),
        sa.Column("creation_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("termination_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("inserted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_live_workers_job_id_jobs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_live_workers")),
        sa.UniqueConstraint("direct_messaging_queue_name", name="uq_live_workers_direct_messaging_queue_name"),
    )
    op.create_index(op.f("ix_live_workers_job_id"), "live_workers", ["job_id"], unique=False)
    op.create_table(
        "worker_statuses",
        sa.Column("instance_id", sa.String(), nullable=False),
        sa.Column("activity", sa.String(length=32), nullable=False, server_default=""),
        sa.Column("current_job", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("description", sa.String(), nullable=False, server_default=""),
        sa.Column("direct_messaging_queue_name", sa.String(), nullable=False, server_default=""),
        sa.Column("label", sa.String(), nullable=False, server_default=""),
        sa.Column("queue_name", sa.String(), nullable=False, server_default=""),
        sa.Column("sdk_version", sa.String(), nullable=False, server_default=""),
        sa.Column("short_description", sa.String(), nullable=False, server_default=""),
        sa.Column(
            "system_info",
            postgresql.JSONB(astext_type=sa.Text()),
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
        ),
        sa.Column("version", sa.String(), nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("inserted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_worker_statuses")),
    )


def downgrade() -> None:
    op.drop_table("worker_statuses")
    op.drop_index(op.f("ix_live_workers_job_id"), table_name="live_workers")
    op.drop_table("live_workers")
    op.drop_table("worker_definitions")
