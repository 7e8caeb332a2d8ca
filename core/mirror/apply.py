"""Applying snapshots: one compare-and-set statement per row, so order and concurrency cannot regress it.

A snapshot is applied only if its version, "<object updated_at or created_at>|<event.created_at>|<event.id>"
(fixed-width UTC times, so text order is version order), is above the row's. The comparison is the WHERE of
`INSERT ... ON CONFLICT (id) DO UPDATE ... WHERE`, one statement on PostgreSQL and SQLite alike: two workers
applying events for one voucher at once never regress it and never fail on a duplicate key.

Deletion is kept apart from the snapshot's version, as two registers that only grow: the newest deletion
and the newest re-creation seen. The row is deleted while the first is above the second, whatever order the
events came in; a newer update of a deleted object updates its snapshot and leaves it deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, bindparam, case, func, literal, null, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from core.mirror.snapshots import EventMeta, Snapshot
from core.mirror.tables import TABLES, history


@dataclass(frozen=True)
class Outcome:
    """What happened to one snapshot."""

    table: str
    key: str
    applied: bool
    version: str  # the snapshot's version
    row_version: str  # the row's version afterwards
    recorded: bool = True  # False: a light shape met an existing row (not a version to compare)


def apply_all(conn: Connection, meta: EventMeta, snaps: Sequence[Snapshot]) -> list[Outcome]:
    """Apply every snapshot of one event and record each in mirror_history (in the caller's transaction)."""
    outcomes = [apply_one(conn, meta, s) for s in snaps]
    now = datetime.now(UTC)
    rows = [
        {
            "table_name": o.table,
            "key": o.key,
            "ingest_event_id": meta.ingest_event_id,
            "event_id": meta.event_id or None,
            "event_type": meta.event_type,
            "event_at": meta.event_at,
            "outcome": "applied" if o.applied else "stale",
            "version": o.version,
            "recorded_at": now,
        }
        for o in outcomes
        if o.recorded
    ]
    if rows:
        conn.execute(history.insert(), rows)
    return outcomes


def apply_one(conn: Connection, meta: EventMeta, snap: Snapshot) -> Outcome:
    """Compare-and-set one row from one snapshot."""
    version = snap.version(meta)
    values: dict[str, Any] = {
        "id": snap.key,
        **snap.columns,
        "snapshot": snap.obj,
        "created_at": snap.created_at,
        "updated_at": snap.updated_at,
        "last_event_id": meta.event_id or None,
        "last_event_type": meta.event_type,
        "last_event_at": meta.event_at,
        "ingest_event_id": meta.ingest_event_id,
        "version": version,
        "deleted_version": version if snap.deleted_at else "",
        "revived_version": version if snap.revived else "",
        "deleted_at": snap.deleted_at,
    }
    if snap.table == "publications":
        values["voucher_codes"] = snap.extra.get("voucher_codes", [])
        values["first_ingest_event_id"] = meta.ingest_event_id
    if snap.generation is not None:
        values["vouchers_generated"], values["vouchers_generated_at"] = snap.generation
    dialect = conn.dialect.name
    light = snap.obj_time is None
    merge_keys = tuple(snap.obj) if not snap.full and not light and dialect != "postgresql" else ()
    stmt = _statement(
        dialect,
        snap.table,
        tuple(values),
        full=snap.full,
        light=light,
        generation=snap.generation is not None,
        merge_keys=merge_keys,
    )
    done = conn.execute(stmt, values).first()
    if light:
        if done is not None:
            return Outcome(snap.table, snap.key, True, version, version)
        # Not a version to compare, so nothing to report: no query for the row's (a round trip per event).
        return Outcome(snap.table, snap.key, False, version, "", recorded=False)
    if done is not None:
        # Applied: the snapshot itself, or only what the deletion or generation registers say.
        return Outcome(snap.table, snap.key, done[0] == version, version, done[0])
    return Outcome(snap.table, snap.key, False, version, _row_version(conn, snap))


@lru_cache(maxsize=512)
def _statement(
    dialect: str,
    table: str,
    columns: tuple[str, ...],
    *,
    full: bool,
    light: bool,
    generation: bool,
    merge_keys: tuple[str, ...],
) -> Any:
    """The upsert for one shape of snapshot, built once and run with bound values.

    Building it is most of the cost in Python (case() and coercions, measured: two thirds of an event's
    time on SQLite), and the shapes are few: a table, the columns a snapshot carries, full or partial.
    """
    t = TABLES[table]
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(t).values({col: bindparam(col, type_=t.c[col].type) for col in columns})
    if light:
        # A light shape (no timestamp) or a publication: fills a missing row, never overwrites one.
        return stmt.on_conflict_do_nothing(index_elements=["id"]).returning(t.c.version)

    ex = stmt.excluded
    c = t.c
    newer = ex.version > c.version

    def pick(col: str) -> ColumnElement[Any]:
        return case((newer, ex[col]), else_=c[col])

    fixed = {"id", "snapshot", "deleted_at", "deleted_version", "revived_version", "created_at", "updated_at"}
    fixed |= {"vouchers_generated", "vouchers_generated_at"}
    set_: dict[str, Any] = {col: pick(col) for col in columns if col not in fixed}
    # A partial snapshot without a time the full object has must not blank it.
    set_ |= {k: pick(k) for k in ("created_at", "updated_at") if full or k in columns}
    if full:
        set_["snapshot"] = pick("snapshot")
    else:
        set_["snapshot"] = case(
            (newer, _merged(c.snapshot, ex.snapshot, merge_keys, dialect)), else_=c.snapshot
        )
    new_del = case((ex.deleted_version > c.deleted_version, ex.deleted_version), else_=c.deleted_version)
    new_rev = case((ex.revived_version > c.revived_version, ex.revived_version), else_=c.revived_version)
    set_["deleted_version"] = new_del
    set_["revived_version"] = new_rev
    set_["deleted_at"] = case(
        (
            new_del > new_rev,
            case((ex.deleted_version > c.deleted_version, ex.deleted_at), else_=c.deleted_at),
        ),
        else_=null(),
    )
    changed: list[ColumnElement[bool]] = [
        newer,
        ex.deleted_version > c.deleted_version,
        ex.revived_version > c.revived_version,
    ]
    if generation:
        # The last generation's count, by its completed_at (a tie, by the larger count): a register of its
        # own, so it ends the same in any order.
        gen_newer = or_(
            c.vouchers_generated_at.is_(None),
            ex.vouchers_generated_at > c.vouchers_generated_at,
            and_(
                ex.vouchers_generated_at == c.vouchers_generated_at,
                func.coalesce(ex.vouchers_generated, -1) > func.coalesce(c.vouchers_generated, -1),
            ),
        )
        set_["vouchers_generated"] = case((gen_newer, ex.vouchers_generated), else_=c.vouchers_generated)
        set_["vouchers_generated_at"] = case(
            (gen_newer, ex.vouchers_generated_at), else_=c.vouchers_generated_at
        )
        changed.append(gen_newer)
    stmt = stmt.on_conflict_do_update(index_elements=["id"], set_=set_, where=or_(*changed))
    return stmt.returning(c.version)


def _merged(stored: Any, incoming: Any, keys: tuple[str, ...], dialect: str) -> ColumnElement[Any]:
    """The stored snapshot with the partial object's top-level keys set (a shallow merge, nulls kept)."""
    if dialect == "postgresql":
        return stored.op("||")(incoming)
    args: list[Any] = [stored]
    for key in keys:
        path = '$."' + key.replace('"', '""') + '"'
        # `->` gives the value as JSON text; json() marks it JSON, so json_set keeps true as true.
        args += [literal(path), func.json(incoming.op("->")(literal(path)))]
    return func.json_set(*args, type_=stored.type)


def _row_version(conn: Connection, snap: Snapshot) -> str:
    t = TABLES[snap.table]
    return conn.execute(select(t.c.version).where(t.c.id == snap.key)).scalar_one_or_none() or ""
