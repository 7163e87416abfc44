"""Workflows carry their view groups; per-group-set workflow counters kept by triggers

GET /workflows filters on ``workflows.view_groups`` and, without other filters, takes its
total from ``workflow_counters`` (a sum over a few rows) instead of counting every workflow:
at 100,000 workflows the exact count alone took 30–130 ms (bench/api_lists.py).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COUNTER_SLOTS = 8


def upgrade() -> None:
    op.add_column(
        "workflows",
        sa.Column("view_groups", postgresql.ARRAY(sa.Text()), nullable=False, server_default="{}"),
    )
    op.execute(
        """
        UPDATE workflows w SET view_groups = groups.view_groups
        FROM (
            SELECT workflow_id, array_agg(DISTINCT g ORDER BY g) AS view_groups
            FROM rights, unnest(rights.groups) AS g
            WHERE workflow_id IS NOT NULL AND action = 'view'
            GROUP BY workflow_id
        ) AS groups
        WHERE groups.workflow_id = w.id
        """
    )
    op.create_index("ix_workflows_view_groups", "workflows", ["view_groups"], postgresql_using="gin")
    op.create_table(
        "workflow_counters",
        sa.Column("view_groups", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("view_groups", "slot", name=op.f("pk_workflow_counters")),
    )
    op.execute(
        f"""
        CREATE FUNCTION stepflow_count_workflow() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO workflow_counters (view_groups, slot, count)
                VALUES (NEW.view_groups, NEW.id % {COUNTER_SLOTS}, 1)
                ON CONFLICT (view_groups, slot) DO UPDATE SET count = workflow_counters.count + 1;
            ELSIF TG_OP = 'DELETE' THEN
                UPDATE workflow_counters SET count = count - 1
                WHERE view_groups = OLD.view_groups AND slot = OLD.id % {COUNTER_SLOTS};
            ELSIF NEW.view_groups IS DISTINCT FROM OLD.view_groups THEN
                UPDATE workflow_counters SET count = count - 1
                WHERE view_groups = OLD.view_groups AND slot = OLD.id % {COUNTER_SLOTS};
                INSERT INTO workflow_counters (view_groups, slot, count)
                VALUES (NEW.view_groups, NEW.id % {COUNTER_SLOTS}, 1)
                ON CONFLICT (view_groups, slot) DO UPDATE SET count = workflow_counters.count + 1;
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER stepflow_count_workflows
        AFTER INSERT OR DELETE OR UPDATE OF view_groups ON workflows
        FOR EACH ROW EXECUTE FUNCTION stepflow_count_workflow()
        """
    )
    op.execute(
        f"""
        INSERT INTO workflow_counters (view_groups, slot, count)
        SELECT view_groups, id % {COUNTER_SLOTS}, count(*) FROM workflows GROUP BY view_groups, id % {COUNTER_SLOTS}
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER stepflow_count_workflows ON workflows")
    op.execute("DROP FUNCTION stepflow_count_workflow()")
    op.drop_table("workflow_counters")
    op.drop_index("ix_workflows_view_groups", table_name="workflows")
    op.drop_column("workflows", "view_groups")
