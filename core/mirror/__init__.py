"""The mirror: every voucher, campaign, customer and publication Voucherify tells us about, in SQL.

`tables` (SQLAlchemy Core, what docs/mirror.md documents), `snapshots` (which objects an event carries),
`apply` (the compare-and-set upserts) and `queries` (reading a row and its history). The workers write it
through the `mirror` action (workers/actions/mirror.py); the admin API and the CLI read it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from core import db
from core.mirror import queries
from core.mirror.apply import Outcome, apply_all
from core.mirror.snapshots import EventMeta, meta_of, snapshots
from core.mirror.tables import history

__all__ = ["EventMeta", "Mirror", "Outcome"]


class Mirror:
    """The mirror database: apply an event, read a row."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, url: str, *, async_commit: bool = False) -> Mirror:
        """A Mirror on the database at `url` (SQLite gets WAL and a busy timeout)."""
        return cls(db.make_engine(url, async_commit=async_commit))

    def apply_event(
        self, payload: Mapping[str, Any], ingest_event_id: str
    ) -> tuple[EventMeta | None, list[Outcome]]:
        """Apply every object the event carries, in one transaction; (meta, []) when it carries none."""
        meta = meta_of(payload, ingest_event_id)
        if meta is None:
            return None, []
        snaps = snapshots(payload, meta)
        if not snaps:
            return meta, []
        with self.engine.begin() as conn:
            return meta, apply_all(conn, meta, snaps)

    def apply_raw(self, raw: bytes, ingest_event_id: str) -> tuple[EventMeta | None, list[Outcome]]:
        """apply_event for a stored body; a body that is not a JSON object carries nothing."""
        try:
            payload = json.loads(raw)
        except ValueError:
            return None, []
        return self.apply_event(payload, ingest_event_id) if isinstance(payload, dict) else (None, [])

    def prune_history(self, before: datetime) -> int:
        """Delete mirror_history rows recorded before `before`; how many."""
        with self.engine.begin() as conn:
            return conn.execute(history.delete().where(history.c.recorded_at < before)).rowcount

    def voucher(self, code: str) -> dict[str, Any] | None:
        """The voucher with this code, with its history."""
        with self.engine.connect() as conn:
            return queries.voucher_by_code(conn, code)

    def campaign(self, key: str) -> dict[str, Any] | None:
        """The campaign with this id, with its history."""
        with self.engine.connect() as conn:
            return queries.by_id(conn, "campaigns", key)

    def row(self, table: str, key: str) -> dict[str, Any] | None:
        """A row of `table` (vouchers, campaigns, customers, publications) by id, with its history."""
        with self.engine.connect() as conn:
            return queries.by_id(conn, table, key)

    def touched_by(self, ingest_event_id: str) -> list[tuple[str, str]]:
        """The (table, key) of the rows one of our events touched (applied or stale)."""
        with self.engine.connect() as conn:
            return queries.touched_by(conn, ingest_event_id)

    def customer(self, key: str) -> dict[str, Any] | None:
        """The customer with this id, with its history."""
        with self.engine.connect() as conn:
            return queries.by_id(conn, "customers", key)
