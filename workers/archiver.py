"""The archiver: moves settled events from Redis to the disk archive, and sweeps the archive's retention.

One pass (a periodic task on its own queue, `archive`, so a slow or unreachable archive database never holds
back the reconciler): read a batch of events settled more than ARCHIVE_AFTER_SECONDS ago, whole, from
Redis; write them to the archive in one transaction (an upsert: archiving twice is one row); then delete
them from Redis with lua/forget.lua, which deletes each only if it is unchanged since it was read. Archive
first, delete second: a crash in between leaves the event in both tiers (listed once, the hot copy wins)
and the next pass archives it again and deletes it. An event replayed or redelivered meanwhile stays hot.

Without an archive, the pass compresses settled bodies in Redis instead (core/store/archiving.py).

The archiver defers to the workers. Moving an event costs ~0.1 ms of CPU (read, compress, write, delete),
the archiver runs on the same machines as the workers, and a pass occupies a worker's pool process, where
events could wait for it. While ARCHIVE_YIELD_BACKLOG events (1: any) wait for a worker, a pass leaves its
work for a later one, and a pass under way stops after its batch when events start to wait: a burst is
processed at full speed and archived after it. Settled events stay in Redis a little longer meanwhile (the
lag gauge shows how long); once an event due has waited ARCHIVE_MAX_DEFER_SECONDS past its time the
archiver no longer defers, so memory stays bounded under a backlog that never clears.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence

from core.archive import Archive, ArchivedEvent
from core.settings import Settings
from core.store import EventStore

log = logging.getLogger("workers.archiver")

BATCH = 200  # events per archive transaction and per Redis delete
PRUNE_BATCH = 1000  # archive rows past their retention deleted per pass


def archive_pass(
    store: EventStore,
    archive: Archive,
    *,
    now: float | None = None,
    batch: int = BATCH,
    budget_s: float = 20.0,
    clock: Callable[[], float] = time.monotonic,
    after_write: Callable[[Sequence[ArchivedEvent]], None] | None = None,
) -> int:
    """Move due events to the archive for about `budget_s` seconds at most; how many left Redis.

    `after_write` runs between the archive's commit and the Redis delete (the fault tests kill the process
    there).
    """
    settings = store.settings
    count_late_duplicates(store, archive)
    deadline = clock() + budget_s
    moved = 0
    deferred = False
    while not (deferred := defers(store, now=now)):
        due = store.due_for_archive(now=now, after_s=settings.archive_after_s, limit=batch)
        if not due:
            break
        archive.write(due, now=now)
        if after_write is not None:
            after_write(due)
        moved += len(store.forget_archived(due))
        if len(due) < batch or clock() >= deadline:
            break
    at = time.time() if now is None else now
    pruned = 0
    if not deferred:  # the sweep is background work too
        pruned = archive.prune(
            processed_before=at - settings.archive_retention_processed_s,
            failed_before=at - settings.archive_retention_failed_s,
            batch=PRUNE_BATCH,
        )
    if moved or pruned:
        log.info("archiver pass", extra={"archived": moved, "pruned": pruned})
    return moved


def count_late_duplicates(store: EventStore, archive: Archive | None) -> int:
    """Add the duplicate deliveries that arrived after their event left Redis to its archived row; how many
    archived events got some. Taken out of Redis first, so two passes never count one twice, and put back
    if the archive fails. Without an archive, an event that is not in Redis has gone with its retention:
    its duplicates are dropped (the `duplicate` outcome of the intake's metrics still counted each)."""
    counts = store.take_late_duplicates()
    if not counts or archive is None:
        return 0
    try:
        return archive.add_duplicates(counts)
    except BaseException:
        store.put_back_late_duplicates(counts)
        raise


def defers(store: EventStore, *, now: float | None = None) -> bool:
    """Whether the archiver leaves its work for later: the workers have a backlog of at least
    ARCHIVE_YIELD_BACKLOG events and no event due has waited ARCHIVE_MAX_DEFER_SECONDS past its time."""
    settings = store.settings
    if not settings.archive_yield_backlog:
        return False
    waiting = store.backlog()
    if waiting < settings.archive_yield_backlog:
        return False
    lag = store.archive_lag(now=now, after_s=settings.archive_after_s)
    if lag >= settings.archive_max_defer_s:
        return False
    log.info("archiver defers to the workers' backlog", extra={"backlog": waiting, "lag_s": round(lag, 1)})
    return True


def archive_or_wait(store: EventStore, archive: Archive, *, budget_s: float) -> int:
    """archive_pass, with the archive database unreachable logged once per pass (events wait in Redis, the
    lag gauge shows it) instead of a traceback: the next pass tries again."""
    from sqlalchemy.exc import DBAPIError

    try:
        return archive_pass(store, archive, budget_s=budget_s)
    except DBAPIError as exc:
        log.warning(
            "archive database unavailable; events stay in Redis until it answers",
            extra={"reason": "archive_unavailable", "error": type(exc.orig).__name__},
        )
        return 0


def compact_pass(store: EventStore, *, now: float | None = None) -> int:
    """Without an archive: compress the bodies of events settled more than ARCHIVE_AFTER_SECONDS ago
    (deferring to a backlog like the archive pass)."""
    count_late_duplicates(store, None)
    if defers(store, now=now):
        return 0
    done = store.compact(now=now, after_s=store.settings.archive_after_s)
    if done:
        log.info("compacted settled bodies", extra={"compacted": done})
    return done


_archives: dict[tuple[int, str], Archive] = {}


def archive_for(settings: Settings) -> Archive | None:
    """This process's Archive (None without ARCHIVE_DATABASE_URL): connections are not shared across forks."""
    url = settings.archive_database_url
    if not url:
        return None
    key = (os.getpid(), url)
    found = _archives.get(key)
    if found is None:
        for stale in [k for k in _archives if k[0] != key[0]]:
            del _archives[stale]  # a parent's, inherited through a fork: never used here
        found = _archives[key] = Archive.from_url(url)
    return found
