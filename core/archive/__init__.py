"""The disk archive: settled events that left Redis, in SQL (SQLite or PostgreSQL).

Redis keeps what is in flight; the archiver (workers/archiver.py) moves each event that settled more than
ARCHIVE_AFTER_SECONDS ago here, one row per event, compressed, and then deletes it from Redis. The readers
(core/history.py) merge both tiers, so an archived event is listed, shown and replayed like any other;
`archived_at` is the only difference a user sees.

A row holds the event's whole hot state: the document's fields and the actions' states exactly as Redis
kept them (one compressed JSON), and the raw body (compressed apart, since only `show --raw` and a replay
need it). The columns beside them are what the listings filter and sort on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, bindparam, delete, func, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from core import db
from core.archive import codec
from core.archive.tables import archived
from core.states import Status

__all__ = ["Archive", "ArchivedEvent", "codec"]


@dataclass(frozen=True)
class ArchivedEvent:
    """One event's whole hot state: its document's fields and actions' states as Redis kept them, its body."""

    id: str
    fields: dict[str, str]  # the {p}:ev:<id> hash
    actions: dict[str, str]  # the {p}:act:<id> hash: action name -> state JSON
    raw: bytes
    archived_at: float | None = None
    # {"fields": …, "actions": …} as JSON when the reader had it encoded already (lua/collect.lua): the
    # archive stores it as is instead of encoding the two dicts again.
    document: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def status(self) -> str:
        return self.fields.get("status", "")

    @property
    def received_at(self) -> float:
        return float(self.fields.get("received_at") or 0)

    @property
    def settled_at(self) -> float:
        return float(self.fields.get("updated_at") or self.fields.get("received_at") or 0)


def voucherify_event_id(dedup_key: str) -> str | None:
    """Voucherify's `event.id` from our dedup key (`ev:<source>:<event id>`, ingest/dedup.py), or None."""
    kind, _, rest = dedup_key.partition(":")
    return rest.partition(":")[2] or None if kind == "ev" else None


class Archive:
    """The archive database: write a batch, read an event, list and count, sweep."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._upsert: tuple[str, tuple[str, ...] | None] | None = None
        self._by_status: tuple[float, dict[str, int] | None] = (0.0, None)

    @classmethod
    def from_url(cls, url: str) -> Archive:
        """An Archive on the database at `url` (SQLite gets WAL and a busy timeout). A PostgreSQL connection
        gives up after 5 s: with the database down, the archiver's pass fails fast and the next one retries,
        and a listing says so instead of hanging."""
        from sqlalchemy.engine import make_url

        pg = make_url(db.normalise_url(url)).get_backend_name() == "postgresql"
        if pg:
            return cls(db.make_engine(url, connect_args={"connect_timeout": 5}))
        return cls(db.make_engine(url))

    def write(self, events: Sequence[ArchivedEvent], *, now: float | None = None) -> int:
        """Insert or update one row per event, in one transaction (archiving twice is one row)."""
        if not events:
            return 0
        now = time.time() if now is None else now
        rows = [_row(e, now) for e in events]
        sql, positions = self._upsert_sql()
        params = rows if positions is None else [tuple(r[k] for k in positions) for r in rows]
        with self.engine.begin() as conn:
            # The statement compiled once, the rows handed to the driver's executemany as they are: ~6 us
            # per event less than conn.execute(stmt, rows), which processes every parameter of every row.
            conn.exec_driver_sql(sql, params)
        return len(rows)

    def _upsert_sql(self) -> tuple[str, tuple[str, ...] | None]:
        """The upsert of one archived_events row in this database's dialect, and the order of its
        parameters when the driver takes them by position (SQLite's qmark) rather than by name."""
        if self._upsert is None:
            dialect = self.engine.dialect
            insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
            stmt = insert(archived)
            keep = {c.name: stmt.excluded[c.name] for c in archived.columns if c.name != "id"}
            compiled = stmt.on_conflict_do_update(index_elements=["id"], set_=keep).compile(dialect=dialect)
            positions = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
            self._upsert = (str(compiled), positions)
        return self._upsert

    def add_duplicates(self, counts: Mapping[str, int]) -> int:
        """Add duplicate deliveries to archived events' documents (event id -> how many more); how many of
        the events are in the archive (the others were pruned: their counts have nowhere to go)."""
        if not counts:
            return 0
        cols = (archived.c.id, archived.c.codec, archived.c.document, archived.c.archived_at)
        with self.engine.begin() as conn:
            rows = conn.execute(select(*cols).where(archived.c.id.in_(list(counts)))).all()
            changes = [_with_duplicates(_event(r._mapping, with_raw=False), counts[r.id]) for r in rows]
            if changes:
                update_row = update(archived).where(archived.c.id == bindparam("_id"))
                conn.execute(
                    update_row.values(document=bindparam("document"), codec=bindparam("codec")), changes
                )
        return len(changes)

    def get(self, event_id: str) -> ArchivedEvent | None:
        """The archived event, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(archived).where(archived.c.id == event_id)).first()
        return None if row is None else _event(row._mapping)

    def documents(self, ids: Sequence[str]) -> dict[str, ArchivedEvent]:
        """The archived events among `ids` (without their bodies), by id."""
        if not ids:
            return {}
        cols = [c for c in archived.columns if c.name != "raw"]
        with self.engine.connect() as conn:
            rows = conn.execute(select(*cols).where(archived.c.id.in_(list(ids)))).all()
        return {r.id: _event(r._mapping, with_raw=False) for r in rows}

    def by_voucherify_id(self, event_id: str) -> str | None:
        """Our id of the newest archived event with Voucherify's `event.id` (or our own id) `event_id`."""
        with self.engine.connect() as conn:
            found = conn.execute(
                select(archived.c.id)
                .where(or_(archived.c.voucherify_event_id == event_id, archived.c.id == event_id))
                .order_by(archived.c.received_at.desc())
                .limit(1)
            ).scalar()
        return found

    def page(
        self,
        *,
        status: str | None = None,
        event_type: str | None = None,
        type_label: str | None = None,
        source: str | None = None,
        since: float | None = None,
        until: float | None = None,
        after: tuple[float, str] | None = None,
        newest_first: bool = True,
        limit: int = 50,
    ) -> list[ArchivedEvent]:
        """Archived events matching the filters (bodies left out), ordered by (received time, id).

        `after` is a position (received time, id) to continue from, exclusive, in the order asked for.
        """
        cols = [c for c in archived.columns if c.name != "raw"]
        q = select(*cols).where(*_filters(status, event_type, type_label, source, since, until))
        key = tuple_(archived.c.received_at, archived.c.id)
        if after is not None:
            q = q.where(key < tuple_(*after) if newest_first else key > tuple_(*after))
        if newest_first:
            q = q.order_by(archived.c.received_at.desc(), archived.c.id.desc())
        else:
            q = q.order_by(archived.c.received_at, archived.c.id)
        with self.engine.connect() as conn:
            rows = conn.execute(q.limit(limit)).all()
        return [_event(r._mapping, with_raw=False) for r in rows]

    def iter_page(self, *, page: int = 500, **filters: Any) -> Iterator[ArchivedEvent]:
        """Every archived event matching `page`'s filters, a page at a time."""
        after: tuple[float, str] | None = None
        while True:
            rows = self.page(after=after, limit=page, **filters)
            yield from rows
            if len(rows) < page:
                return
            after = (rows[-1].received_at, rows[-1].id)

    def count(
        self,
        *,
        status: str | None = None,
        event_type: str | None = None,
        type_label: str | None = None,
        since: float | None = None,
        until: float | None = None,
    ) -> int:
        """How many archived events match."""
        q = select(func.count()).select_from(archived)
        q = q.where(*_filters(status, event_type, type_label, None, since, until))
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar() or 0)

    def count_by_status(self, *, max_age_s: float = 60.0) -> dict[str, int]:
        """How many archived events have each status. One GROUP BY over the status index, remembered for
        `max_age_s`: the console's overview asks every 10 s; the archive changes once per archiver pass."""
        at, counts = self._by_status
        if counts is None or time.monotonic() - at > max_age_s:
            with self.engine.connect() as conn:
                rows = conn.execute(select(archived.c.status, func.count()).group_by(archived.c.status)).all()
            counts = {str(status): int(n) for status, n in rows}
            self._by_status = (time.monotonic(), counts)
        return dict(counts)

    def delete(self, ids: Iterable[str]) -> int:
        """Delete these rows (an event brought back into Redis); how many."""
        ids = list(ids)
        if not ids:
            return 0
        with self.engine.begin() as conn:
            return conn.execute(delete(archived).where(archived.c.id.in_(ids))).rowcount

    def prune(self, *, processed_before: float, failed_before: float, batch: int = 1000) -> int:
        """Delete up to `batch` rows past their retention: processed/ignored settled before
        `processed_before`, invalid/dead before `failed_before`. How many."""
        done = (Status.PROCESSED.value, Status.IGNORED.value)
        expired = or_(
            and_(archived.c.status.in_(done), archived.c.settled_at < processed_before),
            and_(archived.c.status.not_in(done), archived.c.settled_at < failed_before),
        )
        with self.engine.begin() as conn:
            ids = conn.execute(select(archived.c.id).where(expired).limit(batch)).scalars().all()
            if not ids:
                return 0
            return conn.execute(delete(archived).where(archived.c.id.in_(ids))).rowcount

    def oldest_received(self) -> float | None:
        """Received time of the oldest archived event (the sizing's horizon)."""
        with self.engine.connect() as conn:
            return conn.execute(select(func.min(archived.c.received_at))).scalar()


def _filters(
    status: str | None,
    event_type: str | None,
    type_label: str | None,
    source: str | None,
    since: float | None,
    until: float | None,
) -> list[Any]:
    out: list[Any] = []
    if status:
        out.append(archived.c.status == status)
    if type_label:
        out.append(archived.c.type_label == type_label)
    if event_type:
        out.append(archived.c.event_type == event_type)
    if source:
        out.append(archived.c.source == source)
    if since is not None:
        out.append(archived.c.received_at >= since)
    if until is not None:
        out.append(archived.c.received_at <= until)
    return out


def _document(fields: dict[str, str], actions: dict[str, str]) -> bytes:
    """The row's `document` before compression: the event's hot state as one JSON (read back by _event)."""
    return json.dumps({"fields": fields, "actions": actions}, separators=(",", ":")).encode()


def _with_duplicates(e: ArchivedEvent, more: int) -> dict[str, Any]:
    """The parameters of the update adding `more` duplicate deliveries to an archived row's document."""
    fields = {**e.fields, "duplicates": str(int(e.fields.get("duplicates") or 0) + more)}
    return {"_id": e.id, "document": codec.compress(_document(fields, e.actions)), "codec": codec.DEFAULT}


def _row(e: ArchivedEvent, now: float) -> dict[str, Any]:
    f = e.fields
    doc = e.document or _document(f, e.actions)
    return {
        "id": e.id,
        "status": e.status,
        "event_type": f.get("event_type", ""),
        "type_label": f.get("type_label", ""),
        "source": f.get("source", ""),
        "voucherify_event_id": voucherify_event_id(f.get("dedup_key", "")),
        "received_at": e.received_at,
        "settled_at": e.settled_at,
        "archived_at": now,
        "codec": codec.DEFAULT,
        "document": codec.compress(doc),
        "raw": codec.compress(e.raw),
    }


def _event(m: Any, *, with_raw: bool = True) -> ArchivedEvent:
    doc = json.loads(codec.decompress(m["document"], m["codec"]))
    raw = codec.decompress(m["raw"], m["codec"]) if with_raw else b""
    return ArchivedEvent(
        id=m["id"], fields=doc["fields"], actions=doc["actions"], raw=raw, archived_at=m["archived_at"]
    )
