"""The reconciler: hands every event that is due in the outbox to a worker again, without multiplying work.

The outbox holds each unfinished event with the time it next needs attention: a lease after the intake
stored it (in case the enqueue was lost), a lease after a worker started it (in case the worker died), or
the next retry of a failing action. So an acknowledged event can be delayed, never lost.

An event gets at most one outstanding message from the reconciler: its id is recorded on the event, and the
event is not handed over again while that message waits unstarted, unless its queue shows it lost (the
queue is empty, or has moved a lease past it). The rules, and why they bound the time to re-send a lost
message, are in core/store/lua/hand_over.lua and docs/operations.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from core.store import EventStore, HandOff

log = logging.getLogger("workers.reconciler")


def reconcile(
    store: EventStore,
    send: Callable[[HandOff], None],
    *,
    lengths: Callable[[], Mapping[str, int] | None] = lambda: None,
    now: float | None = None,
    batch: int = 500,
    budget: int = 5000,
) -> int:
    """Hand over due outbox entries, looking at no more than about `budget` per run; return how many.

    `lengths()` gives the broker's queue lengths (None if it does not answer: no queue then counts as
    empty). What is left past the budget is still due, and the next run takes it.
    """
    queue_lengths = lengths()
    handed = waiting = seen = 0
    while seen < budget:
        claim = store.hand_over(queue_lengths, now=now, limit=batch)
        for i, handoff in enumerate(claim.handoffs):
            try:
                send(handoff)
            except Exception:
                # Not sent: no message is out for these, so the next run must hand them over again.
                for unsent in claim.handoffs[i:]:
                    store.withdraw(unsent, now=now)
                raise
        handed += len(claim.handoffs)
        waiting += claim.waiting
        seen += claim.seen
        if claim.seen < batch:
            break
    if handed or waiting:
        # `handed_over` is the real count of messages the reconciler sent; the store keeps the running
        # total too (`reconciler|handed_over` in {p}:metrics). A pass that sent nothing is idle: DEBUG, so
        # a terminal running `voucherify-ingest run` is not filled with them every few seconds.
        log.log(
            logging.INFO if handed else logging.DEBUG,
            "reconciler pass",
            extra={"handed_over": handed, "left_waiting": waiting, "outbox": store.outbox_size()},
        )
    return handed
