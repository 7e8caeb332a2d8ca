"""The mirror: every voucher, campaign, customer and publication Voucherify tells us about, in SQL.

`tables` (SQLAlchemy Core, what docs/mirror.md documents), `snapshots` (which objects an event carries),
`apply` (the compare-and-set upserts) and `queries` (reading a row and its history). The workers write it
through the `mirror` action (workers/actions/mirror.py); the admin API and the CLI read it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from core import db
from core.mirror import queries
from core.mirror.apply import Outcome, apply_events
from core.mirror.snapshots import EventMeta, meta_of, snapshots
from core.mirror.tables import history

__all__ = ["EventMeta", "Mirror", "Outcome"]

log = logging.getLogger("core.mirror")


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
        """Apply every object the event carries, atomically; (meta, []) when it carries none.

        On PostgreSQL that is one statement in autocommit: one round trip (core/mirror/apply.py).
        """
        meta = meta_of(payload, ingest_event_id)
        if meta is None:
            return None, []
        snaps = snapshots(payload, meta)
        if not snaps:
            return meta, []
        return meta, apply_events(self.engine, [(meta, snaps)])[0]

    def apply_events(
        self, events: Sequence[tuple[Mapping[str, Any], str]]
    ) -> list[tuple[EventMeta | None, list[Outcome]] | DBAPIError]:
        """Apply a batch of (payload, our event id) as if one after another, in one transaction.

        One result per event, in order: its (meta, outcomes) as apply_event gives them, or the database
        error applying it alone raised. When the batch's transaction fails (a voucher's code still taken, a
        deadlock), nothing of it stays, and the events are applied again one by one, so only the culprit
        gets its error.
        """
        metas = [meta_of(payload, ingest_id) for payload, ingest_id in events]
        snaps = [
            snapshots(payload, meta) if meta is not None else []
            for (payload, _), meta in zip(events, metas, strict=True)
        ]
        work = [(n, meta, s) for n, (meta, s) in enumerate(zip(metas, snaps, strict=True)) if meta and s]
        results: list[tuple[EventMeta | None, list[Outcome]] | DBAPIError] = [(m, []) for m in metas]
        try:
            outcomes = apply_events(self.engine, [(meta, s) for _, meta, s in work])
        except DBAPIError as exc:
            if len(work) == 1:
                results[work[0][0]] = exc
            else:
                log.info(
                    "mirror batch failed: applying its events one by one",
                    extra={"events": len(work), "error": type(exc.orig).__name__},
                )
                for n, _, _ in work:
                    results[n] = self._alone(*events[n])
            return results
        for (n, meta, _), out in zip(work, outcomes, strict=True):
            results[n] = (meta, out)
        return results

    def _alone(
        self, payload: Mapping[str, Any], ingest_event_id: str
    ) -> tuple[EventMeta | None, list[Outcome]] | DBAPIError:
        try:
            return self.apply_event(payload, ingest_event_id)
        except DBAPIError as exc:
            return exc

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
