"""Disruption budgets: disruptions, drained hosts, relocation replacements

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

``disruptions``: one row per task the platform evicted or began to relocate (job, index,
kind, when, by whom), read back so a budget's rate survives a restart. ``drained_hosts``: the
hosts being drained, with when and until when. ``tasks.relocates`` (and its archive twin):
on a relocation's replacement, the id of the task it takes over from.
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("tasks", "archive_tasks"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("relocates", sa.String(64), nullable=False,
                                       server_default=""))
    op.create_table(
        "disruptions",
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False, server_default=""),
    )
    op.create_index("ix_disruptions_job", "disruptions", ["job_id", "at"])
    op.create_table(
        "drained_hosts",
        sa.Column("host_id", sa.String(255), primary_key=True),
        sa.Column("since", sa.Float, nullable=False),
        sa.Column("deadline", sa.Float),
        sa.Column("actor", sa.String(255), nullable=False, server_default=""),
    )


def downgrade() -> None:
    op.drop_table("drained_hosts")
    op.drop_index("ix_disruptions_job", "disruptions")
    op.drop_table("disruptions")
    for table in ("archive_tasks", "tasks"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("relocates")
