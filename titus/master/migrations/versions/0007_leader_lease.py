"""The leader's lease and the epochs it went through

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

``leader_lease``: one row (``name`` = "master") naming the master that leads, its URL, its
epoch and when its lease runs out (seconds on the database's clock). ``leader_epochs``: one
row per epoch ever taken, who took it and when: the history a failover leaves behind.
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leader_lease",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_table(
        "leader_epochs",
        sa.Column("epoch", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("holder", sa.String(64), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("acquired_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leader_epochs")
    op.drop_table("leader_lease")
