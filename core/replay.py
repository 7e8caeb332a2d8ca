"""Replay: hand stored events to the workers again, on the replay queue.

Used by the admin API and the operator command. A replay re-runs an event's failed (or, on request, all)
actions; actions keep their own idempotency, so a replay never emails a customer twice for one publication.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

from core.queue import REPLAY_QUEUE, TaskQueue
from core.store import EventStore


@dataclass(frozen=True)
class ReplayFilter:
    """Which events a bulk replay takes; None matches anything."""

    status: str | None = None
    event_type: str | None = None
    since: float | None = None
    until: float | None = None


def replay_one(store: EventStore, queue: TaskQueue, event_id: str, *, all_actions: bool = False) -> bool:
    """Reset one event for replay and enqueue it; False if there is no such event."""
    if not store.reset_for_replay(event_id, all_actions=all_actions):
        return False
    # If the send fails, the event is in the outbox already: the reconciler hands it over.
    with contextlib.suppress(Exception):
        queue.process_event(event_id, queue=REPLAY_QUEUE)
    return True


def replay_many(
    store: EventStore,
    queue: TaskQueue,
    flt: ReplayFilter,
    *,
    dry_run: bool = False,
    all_actions: bool = False,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Replay every event matching `flt` (oldest first); with dry_run only count them."""
    # Collect first: replaying moves events between the status indexes we iterate.
    ids = list(
        store.iter_ids(
            status=flt.status, event_type=flt.event_type, since=flt.since, until=flt.until, newest_first=False
        )
    )
    if dry_run:
        return len(ids)
    done = 0
    for event_id in ids:
        if replay_one(store, queue, event_id, all_actions=all_actions):
            done += 1
        if progress is not None:
            progress(done)
    return done
