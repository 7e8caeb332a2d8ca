"""Accepting deliveries: the intake's one atomic write (raw body, document, dedup claim, indexes, outbox and,
when the broker is the same Redis, the Celery message)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from core.states import Status
from core.store.base import StoreBase, new_event_id


class Deliveries(StoreBase):
    """The intake's side of the store."""

    def accept(
        self,
        raw: bytes,
        *,
        dedup_key: str,
        headers: Mapping[str, str],
        secret: str,
        source: str = "",
        now: float | None = None,
        enqueue: Callable[[str], tuple[str, bytes]] | None = None,
    ) -> tuple[str, bool]:
        """Store a delivery atomically: (event id, True), or (the original's id, False) for a duplicate.

        `enqueue(event_id)` may give a (list key, message) to push in the same atomic step.
        """
        now = time.time() if now is None else now
        event_id = new_event_id(now)
        queue_key, message = enqueue(event_id) if enqueue is not None else ("", b"")
        fields: dict[str, str | int] = {
            "id": event_id,
            "status": Status.QUEUED.value,
            "event_type": "",
            "received_at": repr(now),
            "updated_at": repr(now),
            "dedup_key": dedup_key,
            "attempts": 0,
            "duplicates": 0,
            "source": source,
            "secret": secret,
            "headers": json.dumps(dict(headers)),
            "size": len(raw),
        }
        flat: list[Any] = [x for kv in fields.items() for x in kv]
        p = self.p
        created, ident = self.script("accept")(
            keys=[
                self.key("dd", dedup_key),
                self.key("ev", event_id),
                self.key("raw", event_id),
                f"{p}:all",
                f"{p}:st:queued",
                f"{p}:outbox",
                queue_key or f"{p}:outbox",
            ],
            args=[
                p,
                event_id,
                self.settings.dedup_window_s,
                repr(now),
                repr(now + self.settings.outbox_lease_s),
                raw,
                message,
                *flat,
            ],
        )
        return ident.decode(), bool(created)
