"""Events about one voucher or campaign, from the packaged examples, with the times and ids a test needs."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from core import examples
from core.mirror import Mirror
from core.mirror.tables import TABLES, history

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def iso(t: datetime, *, micros: bool = True) -> str:
    """Voucherify's two spellings: 6-digit microseconds, or 3-digit milliseconds."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")[: None if micros else -3] + "Z"


def _envelope(event_type: str, example: str, event_id: str, event_at: datetime) -> dict[str, Any]:
    doc = copy.deepcopy(examples.example_envelope(example))
    doc["type"] = event_type
    doc["event"].update(id=event_id, type=event_type, created_at=iso(event_at, micros=False))
    doc["created_at"] = iso(event_at, micros=False)
    return doc


def voucher_event(
    kind: str,
    *,
    voucher_id: str = "v_mirror_test",
    code: str = "MIRROR-1",
    n: int = 0,
    updated_at: datetime | None = None,
    event_at: datetime | None = None,
    event_id: str | None = None,
    active: bool = True,
    micros: bool = True,
) -> dict[str, Any]:
    """`kind`: created, updated, enabled, disabled, deleted (full Voucher); published, redeemed (partial).

    `n` marks the snapshot (metadata, redeemed quantity), so tests can tell which one a row holds.
    """
    updated_at = updated_at or T0 + timedelta(seconds=n)
    event_at = event_at or updated_at + timedelta(seconds=1)
    event_id = event_id or f"evvou_{n:06d}"
    full_types = {
        "created": "voucher.created",
        "updated": "voucher.updated",
        "enabled": "voucher.enabled",
        "disabled": "voucher.disabled",
        "deleted": "voucher.deleted",
    }
    if kind in full_types:
        doc = _envelope(full_types[kind], "voucher.updated", event_id, event_at)
        v = doc["data"]["voucher"]
        v.update(
            id=voucher_id,
            code=code,
            active=active if kind not in ("enabled", "disabled") else kind == "enabled",
            created_at=iso(T0),
            updated_at=iso(updated_at, micros=micros),
            metadata={"n": n},
        )
        v["redemption"]["redeemed_quantity"] = n
        return doc
    if kind == "published":
        doc = _envelope("voucher.published", "voucher.published", event_id, event_at)
        doc["data"]["publication"]["id"] = f"pub_{voucher_id}_{n}"
    elif kind == "redeemed":
        doc = _envelope("redemption.succeeded", "redemption.succeeded", event_id, event_at)
    else:
        raise ValueError(kind)
    doc["data"]["voucher"] = {
        "id": voucher_id,
        "code": code,
        "type": "DISCOUNT_VOUCHER",
        "campaign_id": "camp_mirror_test",
        "active": active,
        "holder_id": "cust_mirror_test",
        "created_at": iso(T0),
        "updated_at": iso(updated_at, micros=micros),
        "redemption": {"quantity": None, "redeemed_quantity": n},
        "object": "voucher",
    }
    return doc


def campaign_event(
    kind: str,
    *,
    campaign_id: str = "camp_mirror_test",
    n: int = 0,
    updated_at: datetime | None = None,
    event_at: datetime | None = None,
    event_id: str | None = None,
    micros: bool = True,
) -> dict[str, Any]:
    """`kind`: created, updated, enabled, disabled, deleted (full Campaign); generated (generation done)."""
    updated_at = updated_at or T0 + timedelta(seconds=n)
    event_at = event_at or updated_at + timedelta(seconds=1)
    event_id = event_id or f"evcam_{n:06d}"
    if kind == "generated":
        doc = _envelope(
            "campaign.vouchers.generation.completed",
            "campaign.vouchers.generation.completed",
            event_id,
            event_at,
        )
        doc["data"]["count"] = n
        doc["data"]["completed_at"] = iso(updated_at, micros=micros)
        c = doc["data"]["campaign"]
        c.update(id=campaign_id, created_at=iso(T0), updated_at=iso(updated_at, micros=micros))
        return doc
    doc = _envelope(f"campaign.{kind}", "campaign.created", event_id, event_at)
    c = doc["data"]["campaign"]
    c.update(
        id=campaign_id,
        name=f"Campaign {n}",
        active=kind != "disabled",
        created_at=iso(T0),
        updated_at=iso(updated_at, micros=micros),
        vouchers_count=n,
        metadata={"n": n},
    )
    return doc


def clear_mirror(m: Mirror) -> None:
    """Empty every mirror table."""
    with m.engine.begin() as conn:
        for t in (*TABLES.values(), history):
            conn.execute(t.delete())


def mirror_state(m: Mirror) -> dict[str, Any]:
    """Every mirrored row, and each row's history in order (without its id and when it was recorded)."""
    h = history.c
    with m.engine.connect() as conn:
        rows = {
            name: sorted((dict(r) for r in conn.execute(select(t)).mappings()), key=lambda r: r["id"])
            for name, t in TABLES.items()
        }
        lines = conn.execute(
            select(h.table_name, h.key, h.ingest_event_id, h.event_id, h.event_type, h.event_at)
            .add_columns(h.outcome, h.version)
            .order_by(h.table_name, h.key, h.id)
        )
        return {"rows": rows, "history": [tuple(r) for r in lines]}
