"""Index the event log by entity: events(entity_id, seq)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

The events of one job or task (``titus events``, describe) are read in order with
``WHERE entity_id = ? ORDER BY seq``; without this index that scans the whole log.
"""
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_entity", "events", ["entity_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_events_entity", table_name="events")
