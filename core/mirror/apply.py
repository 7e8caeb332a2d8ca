"""Applying snapshots: compare-and-set upserts, so order and concurrency cannot regress a row.

A snapshot is applied only if its version, "<object updated_at or created_at>|<event.created_at>|<event.id>"
(fixed-width UTC times, so text order is version order), is above the row's. The comparison is the WHERE of
`INSERT ... ON CONFLICT (id) DO UPDATE ... WHERE`, on PostgreSQL and SQLite alike: two workers applying
events for one voucher at once never regress it and never fail on a duplicate key.

Deletion is kept apart from the snapshot's version, as two registers that only grow: the newest deletion
and the newest re-creation seen. The row is deleted while the first is above the second, whatever order the
events came in; a newer update of a deleted object updates its snapshot and leaves it deleted.

Round trips. On PostgreSQL the upserts of an event and its mirror_history rows are ONE statement (data-
modifying CTEs: each upsert's RETURNING feeds the history insert), run in autocommit: one round trip and
one commit per event instead of BEGIN, an upsert per row, the history insert and COMMIT. A batch of events
is applied in one transaction, as "levels": a level holds at most one snapshot per row (a statement cannot
update a row twice), so it is one multi-row statement (the rows as one JSON parameter); the k-th snapshot
of a row in the batch goes to level k, which keeps each row's snapshots in the batch's order. On SQLite
(in-process, no round trips) each row is one upsert and the history one insert, in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Engine,
    String,
    Text,
    and_,
    bindparam,
    case,
    cast,
    column,
    false,
    func,
    literal,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB

from core.mirror.snapshots import TABLE_ORDER, EventMeta, Snapshot
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


@dataclass(frozen=True)
class Shape:
    """What decides an upsert's SQL: the table, the columns a snapshot carries, how it may change a row."""

    table: str
    columns: tuple[str, ...]
    full: bool  # replaces the snapshot (else merged key by key)
    light: bool  # no version: fills a missing row only
    generation: bool  # carries a campaign's generation register
    merge_keys: tuple[str, ...]  # SQLite: the partial object's keys, merged with json_set


@dataclass
class _Item:
    """One snapshot of one event of the call, with its row values."""

    event: int
    meta: EventMeta
    snap: Snapshot
    values: dict[str, Any]
    shape: Shape

    @property
    def version(self) -> str:
        return str(self.values["version"])


def apply_events(
    engine: Engine, events: Sequence[tuple[EventMeta, Sequence[Snapshot]]]
) -> list[list[Outcome]]:
    """Apply the events' snapshots as if one after another, atomically; the outcomes, event by event.

    One event (or a batch whose rows each appear once) is one statement on PostgreSQL, in autocommit; more
    is one transaction. Any database error rolls everything back and is raised.
    """
    dialect = engine.dialect.name
    items: list[_Item] = []
    for n, (meta, snaps) in enumerate(events):
        for snap in snaps:
            values = _values(meta, snap)
            items.append(_Item(n, meta, snap, values, _shape(snap, tuple(values), dialect)))
    outcomes: dict[int, Outcome] = {}
    levels = _levels(items, outcomes)
    now = datetime.now(UTC)
    if levels and dialect == "postgresql":
        if len(levels) == 1:
            with engine.connect() as conn:
                # A single statement is atomic on its own: no BEGIN, no COMMIT round trips.
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                outcomes |= _pg_level(conn, levels[0], now)
        else:
            with engine.begin() as conn:
                for level in levels:
                    outcomes |= _pg_level(conn, level, now)
    elif levels:
        with engine.begin() as conn:
            # In the events' order: in-process, so the levels would save nothing.
            entries = sorted((entry for level in levels for entry in level), key=lambda e: e[0])
            outcomes |= _sqlite_items(conn, entries, now)
    per_event: list[list[Outcome]] = [[] for _ in events]
    for index in sorted(outcomes):
        per_event[items[index].event].append(outcomes[index])
    return per_event


def _levels(items: list[_Item], skipped: dict[int, Outcome]) -> list[list[tuple[int, _Item]]]:
    """The items as levels of distinct rows, each row's items in order; light repeats go to `skipped`.

    A light shape (no version) only fills a missing row: after any earlier snapshot of its row in the call
    the row exists, so it would change nothing, and is not sent.
    """
    level_of: dict[tuple[str, str], int] = {}
    levels: list[list[tuple[int, _Item]]] = []
    for index, item in enumerate(items):
        row = (item.snap.table, item.snap.key)
        if item.shape.light and row in level_of:
            skipped[index] = Outcome(item.snap.table, item.snap.key, False, item.version, "", recorded=False)
            continue
        level = level_of.get(row, -1) + 1
        level_of[row] = level
        if level == len(levels):
            levels.append([])
        levels[level].append((index, item))
    return levels


def _values(meta: EventMeta, snap: Snapshot) -> dict[str, Any]:
    """The row's columns as one snapshot sets them."""
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
    return values


def _shape(snap: Snapshot, columns: tuple[str, ...], dialect: str) -> Shape:
    light = snap.obj_time is None
    merge_keys = tuple(snap.obj) if not snap.full and not light and dialect != "postgresql" else ()
    return Shape(snap.table, columns, snap.full, light, snap.generation is not None, merge_keys)


def _outcome(item: _Item, done: str | None, row_version: str | None) -> Outcome:
    """An item's outcome from what its upsert returned (`done`: the row's version when it changed it)."""
    table, key, version = item.snap.table, item.snap.key, item.version
    if item.shape.light:
        if done is not None:
            return Outcome(table, key, True, version, version)
        # Not a version to compare, so nothing to report.
        return Outcome(table, key, False, version, "", recorded=False)
    if done is not None:
        # Applied: the snapshot itself, or only what the deletion or generation registers say.
        return Outcome(table, key, done == version, version, done)
    return Outcome(table, key, False, version, row_version or "")


def _history_row(item: _Item, outcome: Outcome, now: datetime) -> dict[str, Any]:
    return {
        "table_name": outcome.table,
        "key": outcome.key,
        "ingest_event_id": item.meta.ingest_event_id,
        "event_id": item.meta.event_id or None,
        "event_type": item.meta.event_type,
        "event_at": item.meta.event_at,
        "outcome": "applied" if outcome.applied else "stale",
        "version": outcome.version,
        "recorded_at": now,
    }


# SQLite: in-process, so a statement per row costs no round trip; the history is one executemany.


def _sqlite_items(conn: Connection, items: list[tuple[int, _Item]], now: datetime) -> dict[int, Outcome]:
    out: dict[int, Outcome] = {}
    rows: list[dict[str, Any]] = []
    for index, item in items:
        done = conn.execute(_statement("sqlite", item.shape), item.values).first()
        row_version = None
        if done is None and not item.shape.light:
            t = TABLES[item.snap.table]
            row_version = conn.execute(select(t.c.version).where(t.c.id == item.snap.key)).scalar()
        out[index] = outcome = _outcome(item, None if done is None else done[1], row_version)
        if outcome.recorded:
            rows.append(_history_row(item, outcome, now))
    if rows:
        conn.execute(history.insert(), rows)
    return out


# PostgreSQL: one statement per level, its rows as one JSON parameter per shape.


def _pg_level(conn: Connection, level: list[tuple[int, _Item]], now: datetime) -> dict[int, Outcome]:
    """Apply one level (distinct rows) and record its history in one statement."""
    groups: dict[Shape, list[tuple[int, _Item]]] = {}
    for entry in sorted(level, key=lambda e: (TABLE_ORDER.index(e[1].snap.table), e[1].snap.key)):
        groups.setdefault(entry[1].shape, []).append(entry)
    shapes = tuple(groups)
    params: dict[str, Any] = {"recorded_at": now}
    for g, entries in enumerate(groups.values()):
        params[f"rows{g}"] = json.dumps([item.values for _, item in entries], default=_json_default)
    done: dict[tuple[int, str], str] = {}
    seen: dict[tuple[int, str], str] = {}
    for g, key, version, changed in conn.execute(_pg_statement(shapes), params):
        (done if changed else seen)[(g, key)] = version
    out: dict[int, Outcome] = {}
    for g, entries in enumerate(groups.values()):
        for index, item in entries:
            row_version = seen.get((g, item.snap.key))
            if (g, item.snap.key) not in done and not item.shape.light and (row_version or "") < item.version:
                # The statement's snapshot predates a concurrent commit that made this one stale.
                t = TABLES[item.snap.table]
                row_version = conn.execute(select(t.c.version).where(t.c.id == item.snap.key)).scalar()
            out[index] = _outcome(item, done.get((g, item.snap.key)), row_version)
    return out


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


@lru_cache(maxsize=256)
def _pg_statement(shapes: tuple[Shape, ...]) -> Any:
    """For each shape: its rows (a recordset from a JSON parameter), their upsert, and which ones it changed;
    then every versioned row, and every light row it inserted, into mirror_history; in one statement.

    The result: (shape index, id, version, changed): the upserts' RETURNING (changed), and for the rows an
    upsert left alone, the version the statement's snapshot saw (the "row is at" of a stale outcome).
    """
    h = history.c
    recorded_at = bindparam("recorded_at", type_=h.recorded_at.type)
    history_parts: list[Any] = []
    result_parts: list[Any] = []
    for g, shape in enumerate(shapes):
        t = TABLES[shape.table]
        columns = [column(col, _record_type(t.c[col])) for col in shape.columns]
        rows = func.jsonb_to_recordset(cast(bindparam(f"rows{g}", type_=Text), JSONB))
        x = select(rows.table_valued(*columns, name=f"r{g}").render_derived(with_types=True)).cte(f"x{g}")
        stmt = postgresql.insert(t).from_select(list(shape.columns), select(*[x.c[c] for c in shape.columns]))
        u = _upsert(stmt, shape, "postgresql").cte(f"u{g}")
        version = x.c.version.collate("C")
        if shape.light:
            outcome: Any = literal("applied")
            joined = x.join(u, u.c.id == x.c.id)
        else:
            outcome = case((u.c.version == version, literal("applied")), else_=literal("stale"))
            joined = x.outerjoin(u, u.c.id == x.c.id)
        history_parts.append(
            select(
                literal(shape.table, String),
                x.c.id,
                x.c.ingest_event_id,
                x.c.last_event_id,
                x.c.last_event_type,
                x.c.last_event_at,
                outcome,
                x.c.version,
                recorded_at,
            ).select_from(joined)
        )
        result_parts.append(select(literal(g), u.c.id, u.c.version, true()))
        if not shape.light:
            # Per left-alone row, its version by primary key (a join here gets planned as a scan of the
            # whole table: measured, 0.3 ms per event at 1000 vouchers, growing with the table).
            row_version = select(t.c.version).where(t.c.id == x.c.id).scalar_subquery()
            result_parts.append(
                select(literal(g), x.c.id, row_version, false()).where(x.c.id.not_in(select(u.c.id)))
            )
    cols = ["table_name", "key", "ingest_event_id", "event_id", "event_type", "event_at", "outcome"]
    cols += ["version", "recorded_at"]
    source: Any = history_parts[0] if len(history_parts) == 1 else _union(history_parts)
    record = history.insert().from_select(cols, source).returning(h.id).cte("h")
    result: Any = result_parts[0] if len(result_parts) == 1 else _union(result_parts)
    return select(result.subquery()).add_cte(record)


def _union(parts: list[Any]) -> Any:
    union: Any = union_all
    return union(*parts)


def _record_type(col: Column[Any]) -> Any:
    """A recordset column's type: the table's, without a collation (a record definition cannot have one)."""
    return String() if col.name in ("version", "deleted_version", "revived_version") else col.type


@lru_cache(maxsize=512)
def _statement(dialect: str, shape: Shape) -> Any:
    """The upsert for one shape of snapshot with bound values (one per column), built once.

    Building it is most of the cost in Python (case() and coercions, measured: two thirds of an event's
    time on SQLite), and the shapes are few: a table, the columns a snapshot carries, full or partial.
    """
    t = TABLES[shape.table]
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(t).values({col: bindparam(col, type_=t.c[col].type) for col in shape.columns})
    return _upsert(stmt, shape, dialect)


def _upsert(stmt: Any, shape: Shape, dialect: str) -> Any:
    """`stmt` (an INSERT of the shape's columns) as the compare-and-set upsert, RETURNING id and version."""
    t = TABLES[shape.table]
    if shape.light:
        # A light shape (no timestamp) or a publication: fills a missing row, never overwrites one.
        return stmt.on_conflict_do_nothing(index_elements=["id"]).returning(t.c.id, t.c.version)

    ex = stmt.excluded
    c = t.c
    newer = ex.version > c.version

    def pick(col: str) -> ColumnElement[Any]:
        return case((newer, ex[col]), else_=c[col])

    fixed = {"id", "snapshot", "deleted_at", "deleted_version", "revived_version", "created_at", "updated_at"}
    fixed |= {"vouchers_generated", "vouchers_generated_at"}
    set_: dict[str, Any] = {col: pick(col) for col in shape.columns if col not in fixed}
    # A partial snapshot without a time the full object has must not blank it.
    set_ |= {k: pick(k) for k in ("created_at", "updated_at") if shape.full or k in shape.columns}
    if shape.full:
        set_["snapshot"] = pick("snapshot")
    else:
        set_["snapshot"] = case(
            (newer, _merged(c.snapshot, ex.snapshot, shape.merge_keys, dialect)), else_=c.snapshot
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
    if shape.generation:
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
    return stmt.returning(c.id, c.version)


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
