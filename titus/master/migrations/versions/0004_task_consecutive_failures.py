"""Tasks count the quick failures of their index: tasks.consecutive_failures

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

Crash-loop back-off: a task index that keeps failing soon after it starts is restarted after a
growing delay. Each task records how many quick failures in a row its index had before it, so
the count, and the next delay, survive a restart of the master. Existing tasks start at 0.
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = ("tasks", "archive_tasks")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("consecutive_failures", sa.Integer, nullable=False,
                                       server_default="0"))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("consecutive_failures")
