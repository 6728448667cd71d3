"""Idempotency keys of job submissions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

A client that retries ``POST /api/v3/jobs`` with the same ``Idempotency-Key`` header gets the
first job back instead of a second one. The key is scoped to the caller and kept for a
configurable time (``idempotency_keep_sec``), across restarts.
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(128), primary_key=True),  # who sent it (a principal)
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_idempotency_created", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_created", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
