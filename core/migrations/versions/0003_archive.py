"""The disk archive: settled events that left Redis (core/archive).

Revision ID: 0003_archive
Revises: 0002_history_by_event
Create Date: 2026-12-02

Spelled out here rather than taken from core.archive.tables, so later changes come as new revisions.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_archive"
down_revision = "0002_history_by_event"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "archived_events",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("event_type", sa.Text, nullable=False, server_default=""),
        sa.Column("type_label", sa.String(100), nullable=False, server_default=""),
        sa.Column("source", sa.String(100), nullable=False, server_default=""),
        sa.Column("voucherify_event_id", sa.String(200)),
        sa.Column("received_at", sa.Double, nullable=False),
        sa.Column("settled_at", sa.Double, nullable=False),
        sa.Column("archived_at", sa.Double, nullable=False),
        sa.Column("codec", sa.String(16), nullable=False),
        sa.Column("document", sa.LargeBinary, nullable=False),
        sa.Column("raw", sa.LargeBinary, nullable=False),
    )
    # The listings (newest first, filtered by status, type or source), the lookups by Voucherify's event id,
    # and the retention sweep (by settle time).
    op.create_index("ix_archived_events_received", "archived_events", ["received_at", "id"])
    op.create_index("ix_archived_events_status", "archived_events", ["status", "received_at"])
    op.create_index("ix_archived_events_type", "archived_events", ["type_label", "received_at"])
    op.create_index("ix_archived_events_source", "archived_events", ["source", "received_at"])
    op.create_index("ix_archived_events_voucherify_id", "archived_events", ["voucherify_event_id"])
    op.create_index("ix_archived_events_settled", "archived_events", ["settled_at"])


def downgrade() -> None:
    op.drop_table("archived_events")
