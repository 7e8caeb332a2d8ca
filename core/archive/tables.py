"""The archive's one table (SQLAlchemy Core), as core/migrations/versions/0003_archive.py creates it."""

from __future__ import annotations

from sqlalchemy import Column, Double, LargeBinary, String, Table, Text

from core.mirror.tables import metadata

# Times are epoch seconds as doubles, exactly as Redis keeps them: the merged listings compare positions
# (received time, id) across both tiers, so they must be the same numbers.
archived = Table(
    "archived_events",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("event_type", Text, nullable=False, server_default=""),
    Column("type_label", String(100), nullable=False, server_default=""),
    Column("source", String(100), nullable=False, server_default=""),
    Column("voucherify_event_id", String(200)),
    Column("received_at", Double, nullable=False),
    Column("settled_at", Double, nullable=False),
    Column("archived_at", Double, nullable=False),
    Column("codec", String(16), nullable=False),
    Column("document", LargeBinary, nullable=False),
    Column("raw", LargeBinary, nullable=False),
)
