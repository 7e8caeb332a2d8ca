"""The reconciler: hands every event that is due in the outbox to a worker again.

The outbox holds each unfinished event with the time it next needs attention: a lease after the intake
stored it (in case the enqueue was lost), a lease after a worker started it (in case the worker died), or
the next retry of a failing action. So an acknowledged event can be delayed, never lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ingest.store import EventStore

log = logging.getLogger("workers.reconciler")


def reconcile(
    store: EventStore, send: Callable[[str], None], *, now: float | None = None, batch: int = 500
) -> int:
    """Re-enqueue due outbox entries; return how many were handed over."""
    total = 0
    while True:
        ids = store.claim_due(now, limit=batch)
        for event_id in ids:
            send(event_id)
        total += len(ids)
        if len(ids) < batch:
            break
    if total:
        log.info("reconciler re-enqueued events", extra={"count": total, "outbox": store.outbox_size()})
    return total
