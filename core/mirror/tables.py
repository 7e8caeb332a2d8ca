"""The mirror's tables (SQLAlchemy Core): what docs/mirror.md promises users, column by column.

Times are UTC with microseconds: `timestamptz` on PostgreSQL, text `YYYY-MM-DDTHH:MM:SS.ffffffZ` on SQLite
(fixed width, so text order is time order and the compare-and-set can compare them as text).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def time_text(value: datetime) -> str:
    """`value` as the fixed-width UTC text the mirror stores and compares (naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime(TIME_FORMAT)


class UtcTime(TypeDecorator[datetime]):
    """An aware UTC datetime: timestamptz on PostgreSQL, normalised ISO-8601 text elsewhere."""

    impl = String(27)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(DateTime(timezone=True))
        return dialect.type_descriptor(String(27))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None or dialect.name == "postgresql":
            return value
        return time_text(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        return datetime.strptime(value, TIME_FORMAT).replace(tzinfo=UTC)


# JSONB on PostgreSQL: `||` merges a partial snapshot into the stored one in the upsert itself.
Json = JSON().with_variant(JSONB(), "postgresql")
# Versions compare as text, byte by byte, on both databases (a locale's collation would not).
VersionText = String(200).with_variant(String(200, collation="C"), "postgresql")

metadata = MetaData()


def _common() -> list[Column[Any]]:
    """The columns every mirrored table has (docs/mirror.md, "Every table")."""
    return [
        Column("snapshot", Json, nullable=False),
        Column("created_at", UtcTime),
        Column("updated_at", UtcTime),
        Column("deleted_at", UtcTime),
        Column("last_event_id", String(100)),
        Column("last_event_type", String(100)),
        Column("last_event_at", UtcTime),
        Column("ingest_event_id", String(64)),
        # Internal (documented as such): the applied snapshot's version, "<object time>|<event time>|<event
        # id>", and the newest deletion and re-creation seen, which decide `deleted_at` in any order.
        Column("version", VersionText, nullable=False, server_default=""),
        Column("deleted_version", VersionText, nullable=False, server_default=""),
        Column("revived_version", VersionText, nullable=False, server_default=""),
    ]


vouchers = Table(
    "vouchers",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("code", String(255)),
    Column("campaign_id", String(100)),
    Column("type", String(50)),
    Column("active", Boolean),
    Column("holder_id", String(100)),
    *_common(),
    Index("ix_vouchers_code", "code"),
    # A deleted voucher's code can be given to a new voucher: unique only among rows not deleted.
    Index(
        "ux_vouchers_live_code",
        "code",
        unique=True,
        sqlite_where=text("deleted_at IS NULL"),
        postgresql_where=text("deleted_at IS NULL"),
    ),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("name", String(255)),
    Column("type", String(50)),
    Column("active", Boolean),
    Column("vouchers_count", Integer),
    Column("vouchers_generated", Integer),
    Column("vouchers_generated_at", UtcTime),
    *_common(),
)

customers = Table(
    "customers",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("source_id", String(255)),
    Column("email", String(320)),
    Column("name", String(255)),
    *_common(),
    Index("ix_customers_source_id", "source_id"),
)

publications = Table(
    "publications",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("customer_id", String(100)),
    Column("campaign_id", String(100)),
    Column("voucher_codes", Json, nullable=False),
    Column("first_ingest_event_id", String(64)),
    *_common(),
    Index("ix_publications_customer_id", "customer_id"),
)

history = Table(
    "mirror_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("table_name", String(20), nullable=False),
    Column("key", String(100), nullable=False),
    Column("ingest_event_id", String(64), nullable=False),
    Column("event_id", String(100)),
    Column("event_type", String(100)),
    Column("event_at", UtcTime),
    Column("outcome", String(10), nullable=False),  # applied | stale
    Column("version", VersionText),
    Column("recorded_at", UtcTime, nullable=False),
    Index("ix_mirror_history_row", "table_name", "key", "id"),
    Index("ix_mirror_history_recorded_at", "recorded_at"),
    Index("ix_mirror_history_event", "ingest_event_id"),
)

TABLES = {t.name: t for t in (vouchers, campaigns, customers, publications)}
