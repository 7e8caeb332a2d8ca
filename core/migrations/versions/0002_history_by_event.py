"""Find the mirror rows one event touched (the console links an event to them).

Revision ID: 0002_history_by_event
Revises: 0001_mirror
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0002_history_by_event"
down_revision = "0001_mirror"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_mirror_history_event", "mirror_history", ["ingest_event_id"])


def downgrade() -> None:
    op.drop_index("ix_mirror_history_event", table_name="mirror_history")
