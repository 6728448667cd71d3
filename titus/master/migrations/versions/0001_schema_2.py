"""Schema 2: the store as it was before migrations

Revision ID: 0001
Revises:
Create Date: 2026-11-29

The baseline: every table of the master's store (jobs, tasks, their archives, agents,
capacity groups, the event log, meta) and of the autoscaler (instance groups, rules, draining
hosts), exactly as the release before migrations created them (its ``meta.schema`` was "2").

On a store written by that release (``meta`` says schema 2, no ``alembic_version``) the
upgrade runs with ``config.attributes["titus.adopt"]`` set to the tables the store has: those
are kept as they are and only the missing ones are created (that release made the autoscaler's
tables only when the autoscaler first ran, so a store may lack them).

Written out in full: the live tables (store_schema.py, persist.py) move on, this does not.
"""
from alembic import context, op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ADOPT = "titus.adopt"


def _job_columns() -> list:
    return [
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason_code", sa.String(32), nullable=False),
        sa.Column("reason_message", sa.Text, nullable=False),
        sa.Column("descriptor", sa.Text, nullable=False),
        sa.Column("accepted_at", sa.Float, nullable=False),
        sa.Column("kill_initiated_at", sa.Float),
        sa.Column("finished_at", sa.Float),
    ]


def _task_columns() -> list:
    return [
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason_code", sa.String(32), nullable=False),
        sa.Column("reason_message", sa.Text, nullable=False),
        sa.Column("kill_reason", sa.String(32), nullable=False),
        sa.Column("host_id", sa.String(255), nullable=False),
        sa.Column("agent_id", sa.String(255), nullable=False),
        sa.Column("ports", sa.String(255), nullable=False),
        sa.Column("resubmit_of", sa.String(64), nullable=False),
        sa.Column("resubmit_number", sa.Integer, nullable=False),
        sa.Column("system_resubmit_number", sa.Integer, nullable=False),
        sa.Column("exit_code", sa.Integer),
        sa.Column("retry_at", sa.Float, nullable=False),
        sa.Column("accepted_at", sa.Float, nullable=False),
        sa.Column("launched_at", sa.Float),
        sa.Column("start_initiated_at", sa.Float),
        sa.Column("started_at", sa.Float),
        sa.Column("kill_initiated_at", sa.Float),
        sa.Column("finished_at", sa.Float),
    ]


def _jobs(name: str) -> None:
    op.create_table(name, *_job_columns())


def _tasks(name: str, index: str) -> None:
    op.create_table(name, *_task_columns())
    op.create_index(index, name, ["job_id"])


# name -> how to create it, in the order the release before migrations created them
TABLES = {
    "jobs": lambda: _jobs("jobs"),
    "tasks": lambda: _tasks("tasks", "ix_tasks_job"),
    "archive_jobs": lambda: _jobs("archive_jobs"),
    "archive_tasks": lambda: _tasks("archive_tasks", "ix_archive_tasks_job"),
    "agents": lambda: op.create_table(
        "agents",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("runtime", sa.String(32), nullable=False),
        sa.Column("address", sa.String(1024), nullable=False),
        sa.Column("hosts", sa.Text, nullable=False),
        sa.Column("registered_at", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
    ),
    "capacity_groups": lambda: op.create_table(
        "capacity_groups",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("tier", sa.String(16), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
    ),
    "events": lambda: op.create_table(
        "events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    ),
    "meta": lambda: op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    ),
    # the autoscaler's tables
    "instance_groups": lambda: op.create_table(
        "instance_groups",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("spec", sa.Text, nullable=False),
    ),
    "autoscale_rules": lambda: op.create_table(
        "autoscale_rules",
        sa.Column("group_name", sa.String(128), primary_key=True),
        sa.Column("spec", sa.Text, nullable=False),
    ),
    "autoscale_draining_hosts": lambda: op.create_table(
        "autoscale_draining_hosts",
        sa.Column("host_id", sa.String(255), primary_key=True),
        sa.Column("group_name", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
    ),
}


def upgrade() -> None:
    existing = set(context.config.attributes.get(ADOPT) or ())
    for name, create in TABLES.items():
        if name not in existing:
            create()


def downgrade() -> None:
    for name in reversed(list(TABLES)):
        op.drop_table(name)
