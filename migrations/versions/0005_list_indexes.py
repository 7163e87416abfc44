"""Indexes for the lists at scale (GET /workflows, /jobs, /workflows_statistics)

Measured on 100,000 workflows and 1,000,000 jobs (bench/api_lists.py, BENCHMARKS.md).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The rights filter of every list: an index-only probe per workflow.
    op.create_index(
        "ix_rights_workflow_action_groups",
        "rights",
        ["action", "workflow_id"],
        postgresql_include=["groups"],
        postgresql_where=sa.text("workflow_id IS NOT NULL"),
    )
    # Newest first, with the id as tie-breaker, for the workflow and job lists.
    op.create_index("ix_workflows_inserted_at_id", "workflows", [sa.text("inserted_at DESC"), sa.text("id DESC")])
    op.drop_index("ix_workflows_inserted_at", table_name="workflows")
    op.create_index("ix_jobs_inserted_at_id", "jobs", [sa.text("inserted_at DESC"), sa.text("id DESC")])
    # Statistics bin the status history by time.
    op.create_index(
        "ix_workflow_status_inserted_at",
        "workflow_status",
        ["inserted_at"],
        postgresql_include=["state", "workflow_id"],
    )
    # search: a case-insensitive substring of the reference or the identifier.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index(
        "ix_workflows_reference_trgm",
        "workflows",
        ["reference"],
        postgresql_using="gin",
        postgresql_ops={"reference": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_workflows_identifier_trgm",
        "workflows",
        ["identifier"],
        postgresql_using="gin",
        postgresql_ops={"identifier": "gin_trgm_ops"},
    )


def downgrade() -> None:
    op.drop_index("ix_workflows_identifier_trgm", table_name="workflows")
    op.drop_index("ix_workflows_reference_trgm", table_name="workflows")
    op.drop_index("ix_workflow_status_inserted_at", table_name="workflow_status")
    op.drop_index("ix_jobs_inserted_at_id", table_name="jobs")
    op.create_index("ix_workflows_inserted_at", "workflows", ["inserted_at"])
    op.drop_index("ix_workflows_inserted_at_id", table_name="workflows")
    op.drop_index("ix_rights_workflow_action_groups", table_name="rights")
