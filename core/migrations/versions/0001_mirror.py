"""The mirror: vouchers, campaigns, customers, publications and their history.

Revision ID: 0001_mirror
Revises:
Create Date: 2026-12-02

Spelled out here rather than taken from core.mirror.tables, so later changes to the tables come as new
revisions and this one stays what it was.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from core.mirror.tables import Json, UtcTime, VersionText

revision = "0001_mirror"
down_revision = None
branch_labels = None
depends_on = None


def _common() -> list[sa.Column]:
    return [
        sa.Column("snapshot", Json, nullable=False),
        sa.Column("created_at", UtcTime),
        sa.Column("updated_at", UtcTime),
        sa.Column("deleted_at", UtcTime),
        sa.Column("last_event_id", sa.String(100)),
        sa.Column("last_event_type", sa.String(100)),
        sa.Column("last_event_at", UtcTime),
        sa.Column("ingest_event_id", sa.String(64)),
        sa.Column("version", VersionText, nullable=False, server_default=""),
        sa.Column("deleted_version", VersionText, nullable=False, server_default=""),
        sa.Column("revived_version", VersionText, nullable=False, server_default=""),
    ]


def upgrade() -> None:
    op.create_table(
        "vouchers",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("code", sa.String(255)),
        sa.Column("campaign_id", sa.String(100)),
        sa.Column("type", sa.String(50)),
        sa.Column("active", sa.Boolean),
        sa.Column("holder_id", sa.String(100)),
        *_common(),
    )
    op.create_index("ix_vouchers_code", "vouchers", ["code"])
    op.create_index(
        "ux_vouchers_live_code",
        "vouchers",
        ["code"],
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(255)),
        sa.Column("type", sa.String(50)),
        sa.Column("active", sa.Boolean),
        sa.Column("vouchers_count", sa.Integer),
        sa.Column("vouchers_generated", sa.Integer),
        sa.Column("vouchers_generated_at", UtcTime),
        *_common(),
    )
    op.create_table(
        "customers",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("source_id", sa.String(255)),
        sa.Column("email", sa.String(320)),
        sa.Column("name", sa.String(255)),
        *_common(),
    )
    op.create_index("ix_customers_source_id", "customers", ["source_id"])
    op.create_table(
        "publications",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("customer_id", sa.String(100)),
        sa.Column("campaign_id", sa.String(100)),
        sa.Column("voucher_codes", Json, nullable=False),
        sa.Column("first_ingest_event_id", sa.String(64)),
        *_common(),
    )
    op.create_index("ix_publications_customer_id", "publications", ["customer_id"])
    op.create_table(
        "mirror_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("table_name", sa.String(20), nullable=False),
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("ingest_event_id", sa.String(64), nullable=False),
        sa.Column("event_id", sa.String(100)),
        sa.Column("event_type", sa.String(100)),
        sa.Column("event_at", UtcTime),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("version", VersionText),
        sa.Column("recorded_at", UtcTime, nullable=False),
    )
    op.create_index("ix_mirror_history_row", "mirror_history", ["table_name", "key", "id"])
    op.create_index("ix_mirror_history_recorded_at", "mirror_history", ["recorded_at"])


def downgrade() -> None:
    for table in ("mirror_history", "publications", "customers", "campaigns", "vouchers"):
        op.drop_table(table)
