"""Replay: hand stored events to the workers again, on the replay queue.

Used by the admin API and the operator command. A replay re-runs an event's failed (or, on request, all)
actions; actions keep their own idempotency, so a replay never emails a customer twice for one publication.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any, Protocol

from core.archive import Archive
from core.history import Events
from core.queue import REPLAY_QUEUE, TaskQueue
from core.states import ActionStatus
from core.store import EventStore, iso
from core.store.jobs import JOB_PAGE


@dataclass(frozen=True)
class ReplayFilter:
    """Which events a bulk replay takes; None matches anything."""

    status: str | None = None
    event_type: str | None = None
    since: float | None = None
    until: float | None = None


def replay_one(
    store: EventStore,
    queue: EventQueue,
    event_id: str,
    *,
    all_actions: bool = False,
    archive: Archive | None = None,
) -> bool:
    """Reset one event for replay and enqueue it; False if there is no such event.

    An archived event is brought back into Redis first, and runs from there as any other.
    """
    if archive is not None and not Events(store, archive).bring_back(event_id):
        return False
    if not store.reset_for_replay(event_id, all_actions=all_actions):
        return False
    # A body compressed once the event settled is put back as received before a worker can start it (the
    # reset above moved the event out of the settled statuses, so it is not compressed again meanwhile).
    store.expand_raw(event_id)
    # If the send fails, the event is in the outbox already: the reconciler hands it over.
    with contextlib.suppress(Exception):
        queue.process_event(event_id, queue=REPLAY_QUEUE)
    return True


# A dry run's per-action breakdown reads each event's actions: bounded, so it stays quick on a large store.
WOULD_RUN_LIMIT = 10_000
NOTHING = "(nothing)"


def would_run(
    store: EventStore,
    flt: ReplayFilter,
    routes: Callable[[str], Sequence[str]],
    *,
    all_actions: bool = False,
    limit: int = WOULD_RUN_LIMIT,
) -> Counter[str]:
    """For a dry run: how many of the matching events would run each action, `routes(event_type)` giving
    the actions a type routes to now.

    An action runs on replay unless it already succeeded or skipped for that event (every action does with
    all_actions); an action routed since the event arrived runs for it (backfill). Looks at the oldest
    `limit` matching events at most, a page at a time (the count itself is the store's, of all of them).
    """
    out: Counter[str] = Counter()
    ids = islice(
        store.iter_ids(
            status=flt.status, event_type=flt.event_type, since=flt.since, until=flt.until, newest_first=False
        ),
        limit,
    )
    while page := list(islice(ids, 500)):
        pipe = store.r.pipeline(transaction=False)
        for event_id in page:
            pipe.hget(store.key("ev", event_id), "event_type")
            pipe.hgetall(store.key("act", event_id))
        replies = pipe.execute()
        for event_type, states in zip(replies[::2], replies[1::2], strict=True):
            done = {
                name.decode()
                for name, state in states.items()
                if not all_actions
                and json.loads(state).get("status") in (ActionStatus.SUCCEEDED, ActionStatus.SKIPPED)
            }
            names = routes((event_type or b"").decode())
            due = [n for n in names if n not in done]
            out.update(due or [NOTHING])
    return out


def replay_many(
    store: EventStore,
    queue: TaskQueue,
    flt: ReplayFilter,
    *,
    dry_run: bool = False,
    all_actions: bool = False,
    progress: Callable[[int], None] | None = None,
    archive: Archive | None = None,
) -> int:
    """Replay every event matching `flt` (oldest first in each tier); with dry_run only count them."""
    # Collect first: replaying moves events between the status indexes we iterate.
    ids = list(
        store.iter_ids(
            status=flt.status, event_type=flt.event_type, since=flt.since, until=flt.until, newest_first=False
        )
    )
    if archive is not None:
        ids += [
            e.id
            for e in Events(store, archive).iter_archived(
                status=flt.status, event_type=flt.event_type, since=flt.since, until=flt.until
            )
        ]
    if dry_run:
        return len(ids)
    done = 0
    for event_id in ids:
        if replay_one(store, queue, event_id, all_actions=all_actions, archive=archive):
            done += 1
        if progress is not None:
            progress(done)
    return done


# -- counting and jobs -------------------------------------------------------------------------------------
#
# A bulk replay runs as a job on a worker, not inside the HTTP request or the operator's command: it can
# take minutes. Its state is one small hash in the store (core/store/jobs.py says what it holds).
#
# The page is written down before it is replayed and `done` moves with `page_pos` in one transaction, so a
# job whose worker died resumes where it stopped: an event of the interrupted page may be replayed twice
# (harmless: replays are idempotent) but is counted once, and the final count is exact.

JOB_STATES = ("queued", "running", "done", "failed")


class EventQueue(Protocol):
    """What replaying needs of the task queue: the intake's TaskQueue, or a worker's own sender."""

    def process_event(self, event_id: str, *, queue: str = ...) -> None: ...


class JobQueue(Protocol):
    """What starting a job needs of the task queue."""

    def replay_job(self, job_id: str) -> None: ...


class JobNotStartedError(Exception):
    """The job was written down but could not be handed to a worker (the broker is unreachable)."""


def count_matching(store: EventStore, flt: ReplayFilter, *, archive: Archive | None = None) -> int:
    """How many events match `flt` in both tiers, counted without listing them (a dry run's answer)."""
    return Events(store, archive).count_matching(
        status=flt.status, event_type=flt.event_type, since=flt.since, until=flt.until
    )


def start_job(
    store: EventStore,
    queue: JobQueue,
    flt: ReplayFilter,
    *,
    all_actions: bool = False,
    now: float | None = None,
    archive: Archive | None = None,
) -> dict[str, Any]:
    """Write down a bulk replay job and hand it to a worker; its view (see job_view)."""
    now = time.time() if now is None else now
    # The window ends now at the latest: events that arrive while the job runs are not part of it, so the
    # job ends, and its count is the count of what was asked for.
    flt = replace(flt, until=now if flt.until is None else min(flt.until, now))
    job_id = f"job_{int(now * 1000):012x}{secrets.token_hex(6)}"
    store.save_job(
        job_id,
        {
            "id": job_id,
            "state": "queued",
            "status": flt.status,
            "type": flt.event_type,
            "since": None if flt.since is None else repr(flt.since),
            "until": repr(flt.until),
            "all_actions": int(all_actions),
            "total": count_matching(store, flt, archive=archive),
            "done": 0,
            "created_at": repr(now),
            "updated_at": repr(now),
        },
    )
    try:
        queue.replay_job(job_id)
    except Exception as exc:
        store.save_job(job_id, {"state": "failed", "error": f"not started: {type(exc).__name__}"})
        raise JobNotStartedError(job_id) from exc
    view = job_view(store, job_id)
    assert view is not None
    return view


def job_view(store: EventStore, job_id: str) -> dict[str, Any] | None:
    """A job as the admin API shows it: state, filter, progress, and the final count once done."""
    job = store.load_job(job_id)
    if job is None:
        return None

    def num(name: str) -> float | None:
        return float(job[name]) if job.get(name) else None

    done = int(job.get("done") or 0)
    return {
        "job": job["id"],
        "state": job["state"],
        "filter": {
            "status": job.get("status") or None,
            "type": job.get("type") or None,
            "since": iso(num("since")),
            "until": iso(num("until")),
        },
        "all_actions": job.get("all_actions") == "1",
        "total": int(job.get("total") or 0),
        "done": done,
        "count": done if job["state"] == "done" else None,
        "created_at": iso(num("created_at")),
        "started_at": iso(num("started_at")),
        "finished_at": iso(num("finished_at")),
        "updated_at": iso(num("updated_at")),
        "error": job.get("error") or None,
    }


def run_job(
    store: EventStore,
    queue: EventQueue,
    job_id: str,
    *,
    slice_s: float = 20.0,
    clock: Callable[[], float] = time.monotonic,
    archive: Archive | None = None,
) -> str | None:
    """Work on a replay job for about `slice_s` seconds; its state after ("running": send it on), or None.

    Safe to run twice at once or again after a crash: one runner holds the job's lock, another waits for it
    (a dead runner's lock lapses within JOB_LOCK_S), and the walk resumes from what is written down.
    With an archive, the walk goes on through the archive once Redis's index is done (`phase` "archive"):
    an event archived while the job walked Redis is found there, and one replayed from Redis is not
    archived again before the job ends (it changed, so it stays hot for ARCHIVE_AFTER_SECONDS).
    """
    deadline = clock() + slice_s
    token = secrets.token_hex(8)
    while not store.take_job_lock(job_id, token):
        job = store.load_job(job_id)
        if job is None or job["state"] in ("done", "failed"):
            return None if job is None else job["state"]
        if clock() > deadline:
            return "busy"  # its runner is alive, and sends the job on itself
        time.sleep(0.2)
    try:
        job = store.load_job(job_id)
        if job is None or job["state"] in ("done", "failed"):
            return None if job is None else job["state"]
        if job["state"] == "queued":
            now = repr(time.time())
            store.save_job(job_id, {"state": "running", "started_at": now, "updated_at": now})
        all_actions = job.get("all_actions") == "1"
        page = json.loads(job.get("page") or "[]")
        pos = int(job.get("page_pos") or 0)
        while clock() < deadline:
            if pos >= len(page):
                page, pos = _next_page(store, archive, job_id, job), 0
                if not page:
                    now = repr(time.time())
                    store.save_job(
                        job_id, {"state": "done", "finished_at": now, "updated_at": now, "page": ""}
                    )
                    return "done"
                job = store.load_job(job_id) or job
                store.keep_job_lock(job_id)
            event_id = page[pos]
            replayed = replay_one(store, queue, event_id, all_actions=all_actions, archive=archive)
            pos += 1
            store.save_job(
                job_id, {"page_pos": pos, "updated_at": repr(time.time())}, incr_done=int(replayed)
            )
        return "running"
    finally:
        store.release_job_lock(job_id, token)


def _next_page(store: EventStore, archive: Archive | None, job_id: str, job: dict[str, str]) -> list[str]:
    """The job's next page of ids: from Redis's index, then (with an archive) from the archive."""
    if job.get("phase") != "archive":
        page = store.next_job_page(job_id, job)
        if page or archive is None:
            return page
        job = {**job, "phase": "archive", "cursor_score": "", "cursor_id": ""}
        store.save_job(job_id, {"phase": "archive", "cursor_score": "", "cursor_id": ""})
    assert archive is not None
    after = (float(job["cursor_score"]), job["cursor_id"]) if job.get("cursor_score") else None
    rows = Events(store, archive).archived(
        status=job.get("status") or None,
        event_type=job.get("type") or None,
        since=float(job["since"]) if job.get("since") else None,
        until=float(job["until"]) if job.get("until") else None,
        after=after,
        newest_first=False,
        limit=JOB_PAGE,
    )
    if not rows:
        return []
    page = [r.id for r in rows]
    store.save_job(
        job_id,
        {
            "cursor_score": repr(rows[-1].received_at),
            "cursor_id": rows[-1].id,
            "page": json.dumps(page),
            "page_pos": 0,
        },
    )
    return page
