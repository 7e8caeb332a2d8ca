"""Reading the mirror back: one row with the history of the events that touched it (CLI and admin API)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, select

from core.mirror.tables import TABLES, history, time_text

# Columns that only the compare-and-set needs; shown under "version", not as columns users rely on.
INTERNAL = ("deleted_version", "revived_version")
HISTORY_LIMIT = 20


def voucher_by_code(conn: Connection, code: str) -> dict[str, Any] | None:
    """The voucher with this code: the live one, else the most recently deleted."""
    t = TABLES["vouchers"]
    rows = conn.execute(select(t).where(t.c.code == code)).mappings().all()
    if not rows:
        return None
    live = [r for r in rows if r["deleted_at"] is None]
    row = live[0] if live else max(rows, key=lambda r: r["deleted_at"])
    return _with_history(conn, t, dict(row))


def by_id(conn: Connection, table: str, key: str) -> dict[str, Any] | None:
    """The row of `table` with this id, with its history; None when there is none."""
    t = TABLES[table]
    row = conn.execute(select(t).where(t.c.id == key)).mappings().first()
    return None if row is None else _with_history(conn, t, dict(row))


def touched_by(conn: Connection, ingest_event_id: str) -> list[tuple[str, str]]:
    """The (table, key) of every row our event `ingest_event_id` applied to or was stale for."""
    h = history.c
    rows = conn.execute(
        select(h.table_name, h.key)
        .where(h.ingest_event_id == ingest_event_id)
        .distinct()
        .order_by(h.table_name, h.key)
    ).all()
    return [(str(t), str(k)) for t, k in rows]


def _with_history(conn: Connection, t: Table, row: dict[str, Any]) -> dict[str, Any]:
    h = history.c
    events = (
        conn.execute(
            select(
                h.ingest_event_id, h.event_id, h.event_type, h.event_at, h.outcome, h.version, h.recorded_at
            )
            .where(h.table_name == t.name, h.key == row["id"])
            .order_by(h.id.desc())
            .limit(HISTORY_LIMIT)
        )
        .mappings()
        .all()
    )
    out = {k: _plain(v) for k, v in row.items() if k not in INTERNAL}
    out["table"] = t.name
    out["history"] = [{k: _plain(v) for k, v in e.items()} for e in events]
    return out


def _plain(value: Any) -> Any:
    return time_text(value) if isinstance(value, datetime) else value
