"""Indexes for the gauges /metrics computes at each scrape (stepflow.metrics.state)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

IN_FLIGHT = "kind = 'worker' AND state NOT IN ('completed', 'error', 'skipped', 'stopped')"


def upgrade() -> None:
    # stepflow_jobs_in_flight: only the jobs not in a final state, a small part of the table.
    op.create_index("ix_jobs_in_flight", "jobs", ["name"], postgresql_where=sa.text(IN_FLIGHT))
    # stepflow_workflow_duration_window_seconds: the artifacts of the window.
    op.create_index("ix_artifacts_inserted_at", "artifacts", ["inserted_at"], postgresql_include=["workflow_id"])


def downgrade() -> None:
    op.drop_index("ix_artifacts_inserted_at", table_name="artifacts")
    op.drop_index("ix_jobs_in_flight", table_name="jobs")
