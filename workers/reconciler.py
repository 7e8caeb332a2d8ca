"""The reconciler: hands every event that is due in the outbox to a worker again.

The outbox holds each unfinished event with the time it next needs attention: a lease after the intake
stored it (in case the enqueue was lost), a lease after a worker started it (in case the worker died), or
the next retry of a failing action. So an acknowledged event can be delayed, never lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from core.store import EventStore

log = logging.getLogger("workers.reconciler")


def reconcile(
    store: EventStore,
    send: Callable[[str], None],
    *,
    backlog: Callable[[], int] = lambda: 0,
    now: float | None = None,
    batch: int = 500,
) -> int:
    """Re-enqueue due outbox entries; return how many were handed over.

    A `queued` event past its lease while the broker still holds messages (`backlog()` > 0) is most likely
    one of them, waiting its turn: it is not sent again, only pushed a lease further (re-sending it would
    multiply a backlog by itself every lease). Its message, if it was lost, is re-sent once the queues drain.
    Events a worker started (`processing`) or that wait for a retry (`failed`) are always handed over.
    """
    total = skipped = 0
    waiting: int | None = None
    while True:
        ids = store.claim_due(now, limit=batch)
        statuses = store.statuses(ids)
        for event_id, status in zip(ids, statuses, strict=True):
            if status == "queued":
                if waiting is None:
                    waiting = backlog()
                if waiting > 0:
                    skipped += 1
                    continue
            send(event_id)
            total += 1
        if len(ids) < batch:
            break
    if total or skipped:
        log.info(
            "reconciler pass",
            extra={"resent": total, "left_in_backlog": skipped, "outbox": store.outbox_size()},
        )
    return total
