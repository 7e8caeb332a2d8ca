"""Helpers of the fault tests (their fixtures are in conftest.py).

Timings are shortened through the same environment variables an operator would set: a 5 s outbox lease and
a reconciler every 0.5 s, so an event whose worker died is handed over again within ~6 s.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core import examples
from core.settings import Settings
from core.store import TERMINAL, EventStore
from ingest import create_app
from tests.support import SECRET, signed, wait_for

LEASE_S = 5


# The worker's settings in every fault test, unless a test overrides them.
FAULT_ENV = {
    "OUTBOX_LEASE_SECONDS": str(LEASE_S),
    "RECONCILE_INTERVAL_SECONDS": "0.5",
    "ACTION_BACKOFF_BASE_SECONDS": "0.2",
    "ACTION_BACKOFF_CAP_SECONDS": "2",
    "SMTP_TIMEOUT_SECONDS": "3",
    # An email's reservation is this + 10 s: 30 s, so a killed worker's emails are sent again ~30 s later.
    "SMTP_DEADLINE_SECONDS": "20",
    "FORWARD_TIMEOUT_SECONDS": "3",
    "NOTIFY_FROM": "shop@example.com",
}


def publication(email: str | None = None, pub_id: str | None = None) -> dict[str, Any]:
    """A publication.succeeded for a new customer and publication (fresh event id too)."""
    doc = examples.example_envelope("publication.succeeded")
    doc["data"]["customer"]["email"] = email or f"c-{uuid.uuid4().hex[:12]}@example.com"
    doc["data"]["publication"]["id"] = pub_id or f"pub_{uuid.uuid4().hex}"
    return doc


def email_of(doc: dict[str, Any]) -> str:
    return doc["data"]["customer"]["email"]


class Intake:
    """The real intake app (real store, real broker) behind Flask's test client."""

    def __init__(self, settings: Settings) -> None:
        self.client = create_app(settings).test_client()

    def post(self, doc: Any, source: str = "") -> dict[str, Any]:
        body, headers = signed(doc)
        path = f"/webhooks/voucherify/{source}" if source else "/webhooks/voucherify"
        resp = self.client.post(path, data=body, headers=headers)
        assert resp.status_code == 202, (resp.status_code, resp.json)
        return resp.json


def wait_settled(
    store: EventStore, ids: Iterable[str], timeout: float, statuses: frozenset[str] = TERMINAL
) -> dict[str, str]:
    """Wait until every event is in one of `statuses`; their statuses."""
    ids = list(ids)

    def done() -> dict[str, str] | None:
        pipe = store.r.pipeline(transaction=False)
        for i in ids:
            pipe.hget(store.key("ev", i), "status")
        got = {i: (s or b"").decode() for i, s in zip(ids, pipe.execute(), strict=True)}
        return got if all(s in statuses for s in got.values()) else None

    try:
        return wait_for(done, timeout=timeout, interval=0.1, what=f"{len(ids)} events to settle")
    except AssertionError:
        counts: dict[str, int] = {}
        for i in ids:
            st = store.r.hget(store.key("ev", i), "status")
            counts[(st or b"gone").decode()] = counts.get((st or b"gone").decode(), 0) + 1
        raise AssertionError(f"not settled after {timeout}s: {counts}") from None


def fault_settings(redis_url: str, data_dir: Path, **changes: Any) -> Settings:
    base = Settings(
        redis_url=redis_url,
        broker_url=redis_url,
        webhook_secrets=(SECRET,),
        data_dir=data_dir,
        outbox_lease_s=LEASE_S,
    )
    return base.with_(**changes)


class Stopwatch:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self) -> float:
        return round(time.monotonic() - self.t0, 2)
