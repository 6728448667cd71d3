"""Who submitted each job, and each agent's own credential

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

``jobs.submitted_by`` (and ``archive_jobs``): the principal that submitted the job; a ``user``
token manages only its own jobs. ``agents.credential_sha256``: the SHA-256 of the credential a
registration handed the agent; only that credential may act for the agent, also on another
master after a failover. Existing rows get "" (no principal, no credential).
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("jobs", "archive_jobs"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("submitted_by", sa.String(255), nullable=False,
                                       server_default=""))
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("credential_sha256", sa.String(64), nullable=False,
                                   server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("credential_sha256")
    for table in ("jobs", "archive_jobs"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("submitted_by")
