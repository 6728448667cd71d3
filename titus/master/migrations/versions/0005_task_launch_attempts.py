"""Tasks count the launch orders sent for them: tasks.launch_attempts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

A task placed on a host gets a launch order (attempt 1). When its agent comes back before the
task reported starting, the master sends the order again: attempt 2, and so on. The count is
stored so the task's view and the event log show every attempt, also after a restart.
Existing tasks start at 0 (unknown).
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TABLES = ("tasks", "archive_tasks")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("launch_attempts", sa.Integer, nullable=False,
                                       server_default="0"))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("launch_attempts")
