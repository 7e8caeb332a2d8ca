"""Which Voucherify objects an event carries, as snapshots to apply: pure functions over the parsed body.

Every event whose `data` carries a voucher, campaign, customer or publication feeds the mirror, not only
the seed types. Whether a snapshot is full (the whole object, it replaces the row's snapshot) or partial (a
`SimpleVoucher` inside a redemption: merged key by key) depends on the event type, as Voucherify documents
the shapes (/work/shared/VOUCHERIFY.md section 6, "Same entity, different shapes").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeGuard

from core.mirror.tables import time_text

# Event types whose `data.voucher`, `data.campaign`, `data.customer` is the full object.
FULL_VOUCHER = frozenset(
    {
        "voucher.created",
        "voucher.updated",
        "voucher.enabled",
        "voucher.disabled",
        "voucher.deleted",
        "voucher.gift.transaction.created",
        "voucher.loyalty_card.transaction.created",
    }
)
FULL_CAMPAIGN = frozenset(
    {"campaign.created", "campaign.updated", "campaign.enabled", "campaign.disabled", "campaign.deleted"}
)
FULL_CUSTOMER = frozenset(
    {
        "customer.created",
        "customer.updated",
        "customer.deleted",
        "customer.segment.entered",
        "customer.segment.left",
    }
)
# The event that removes the object, and the ones that mean it exists (again).
DELETED = {"voucher.deleted": "vouchers", "campaign.deleted": "campaigns", "customer.deleted": "customers"}
REVIVED = {"voucher.created": "vouchers", "campaign.created": "campaigns", "customer.created": "customers"}
GENERATION_COMPLETED = "campaign.vouchers.generation.completed"

# The types the mirror's action is routed to: every family whose data carries one of its objects.
PATTERNS = ("voucher.*", "campaign.*", "customer.*", "publication.succeeded", "redemption.*")

# Columns taken from the object, by table: column -> the object's key.
COLUMNS: Mapping[str, Mapping[str, str]] = {
    "vouchers": {
        "code": "code",
        "campaign_id": "campaign_id",
        "type": "type",
        "active": "active",
        "holder_id": "holder_id",
    },
    "campaigns": {"name": "name", "type": "type", "active": "active", "vouchers_count": "vouchers_count"},
    "customers": {"source_id": "source_id", "email": "email", "name": "name"},
    "publications": {"customer_id": "customer_id"},
}
# Apply in this order (then by key), so two events touching the same rows lock them in the same order.
TABLE_ORDER = ("campaigns", "customers", "vouchers", "publications")


@dataclass(frozen=True)
class EventMeta:
    """The event a snapshot came from."""

    ingest_event_id: str  # ours (evt_...)
    event_id: str  # Voucherify's event.id ("" when absent)
    event_type: str
    event_at: datetime  # event.created_at


@dataclass(frozen=True)
class Snapshot:
    """One object to apply to one row."""

    table: str
    key: str
    obj: dict[str, Any]
    columns: dict[str, Any]
    full: bool
    obj_time: datetime | None  # updated_at, else created_at; None: a light shape (fills a missing row only)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None  # set on the event that deletes the object
    revived: bool = False
    generation: tuple[int | None, datetime] | None = None  # campaigns: (count, completed_at)
    extra: dict[str, Any] = field(default_factory=dict)  # publications: voucher_codes

    def version(self, meta: EventMeta) -> str:
        """ "<object time>|<event time>|<event id>": compared as text, fixed-width times first."""
        if self.obj_time is None:
            return ""
        return f"{time_text(self.obj_time)}|{time_text(meta.event_at)}|{meta.event_id}"


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 string (millis or micros, `Z`) as an aware UTC datetime; None for anything else."""
    if not isinstance(value, str) or len(value) < 19:
        return None  # date-only strings are no version
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def meta_of(payload: Mapping[str, Any], ingest_event_id: str) -> EventMeta | None:
    """The event's identity and time, or None for a body without an event envelope."""
    event = payload.get("event")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        return None
    at = parse_time(event.get("created_at")) or parse_time(payload.get("created_at"))
    if at is None:
        return None
    return EventMeta(ingest_event_id, str(event.get("id") or ""), event["type"], at)


def snapshots(payload: Mapping[str, Any], meta: EventMeta) -> list[Snapshot]:
    """Every mirrored object the event's `data` carries, in lock order."""
    data = payload.get("data")
    if not isinstance(data, dict):
        return []
    found: dict[tuple[str, str], Snapshot] = {}
    for snap in _found(data, meta):
        # One snapshot per row and event: the full one wins over a partial copy of the same object.
        prev = found.get((snap.table, snap.key))
        if prev is None or (snap.full and not prev.full):
            found[(snap.table, snap.key)] = snap
    return sorted(found.values(), key=lambda s: (TABLE_ORDER.index(s.table), s.key))


def _found(data: dict[str, Any], meta: EventMeta) -> Iterator[Snapshot]:
    t = meta.event_type
    voucher = data.get("voucher")
    if _obj(voucher):
        yield _snapshot("vouchers", voucher, meta, full=t in FULL_VOUCHER, data=data)
    for v in data.get("vouchers") or ():
        if _obj(v):
            yield _snapshot("vouchers", v, meta, full=False, data=data)
    campaign = data.get("campaign")
    if _obj(campaign):
        snap = _snapshot("campaigns", campaign, meta, full=t in FULL_CAMPAIGN, data=data)
        completed = parse_time(data.get("completed_at"))
        if t == GENERATION_COMPLETED and completed is not None:
            count = data.get("count")
            snap = _replace(snap, generation=(count if isinstance(count, int) else None, completed))
        yield snap
    for name in ("customer", "holder"):
        customer = data.get(name)
        if _obj(customer):
            yield _snapshot(
                "customers", customer, meta, full=t in FULL_CUSTOMER and name == "customer", data=data
            )
    publication = data.get("publication")
    if _obj(publication):
        codes = [v.get("code") for v in data.get("vouchers") or () if isinstance(v, dict)]
        if _obj(voucher):
            codes.append(voucher.get("code"))
        snap = _snapshot("publications", publication, meta, full=True, data=data)
        columns = dict(snap.columns)
        if _obj(campaign):
            columns["campaign_id"] = campaign["id"]
        yield _replace(
            snap, columns=columns, extra={"voucher_codes": list(dict.fromkeys(c for c in codes if c))}
        )


def _obj(value: Any) -> TypeGuard[dict[str, Any]]:
    return isinstance(value, dict) and isinstance(value.get("id"), str) and bool(value["id"])


def _snapshot(
    table: str, obj: dict[str, Any], meta: EventMeta, *, full: bool, data: dict[str, Any]
) -> Snapshot:
    created = parse_time(obj.get("created_at"))
    updated = parse_time(obj.get("updated_at"))
    # A full object replaces the row, so a key it lacks blanks its column; a partial sets what it carries.
    columns = {col: obj.get(key) for col, key in COLUMNS[table].items() if full or key in obj}
    deleted_at = None
    if DELETED.get(meta.event_type) == table and full:
        deleted_at = parse_time(obj.get("deleted_at")) or parse_time(data.get("deleted_at")) or meta.event_at
    # Publications never change: the first event that carries one writes it, nothing overwrites it.
    obj_time = None if table == "publications" else updated or created
    return Snapshot(
        table=table,
        key=obj["id"],
        obj=obj,
        columns=columns,
        full=full,
        obj_time=obj_time,
        created_at=created,
        updated_at=updated,
        deleted_at=deleted_at,
        revived=REVIVED.get(meta.event_type) == table and full,
    )


def _replace(snap: Snapshot, **changes: Any) -> Snapshot:
    from dataclasses import replace

    return replace(snap, **changes)
