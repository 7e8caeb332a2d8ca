"""Accepting deliveries: the intake's one atomic write (raw body, document, dedup claim, indexes, outbox and,
when the broker is the same Redis, the Celery message)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping

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
        p = self.p
        received = repr(now)
        # The document's other fields are constants the script writes itself (lua/accept.lua).
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
                received,
                repr(now + self.settings.outbox_lease_s),
                raw,
                message,
                dedup_key,
                source,
                secret,
                json.dumps(dict(headers)),
            ],
        )
        return ident.decode(), bool(created)
