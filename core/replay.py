"""Replay: hand stored events to the workers again, on the replay queue.

Used by the admin API and the operator command. A replay re-runs an event's failed (or, on request, all)
actions; actions keep their own idempotency, so a replay never emails a customer twice for one publication.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol, cast

from core.queue import REPLAY_QUEUE, TaskQueue
from core.store import EventStore, iso
from core.store.base import text
from schemas import event_types


@dataclass(frozen=True)
class ReplayFilter:
    """Which events a bulk replay takes; None matches anything."""

    status: str | None = None
    event_type: str | None = None
    since: float | None = None
    until: float | None = None


def replay_one(store: EventStore, queue: EventQueue, event_id: str, *, all_actions: bool = False) -> bool:
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


# -- counting and jobs -------------------------------------------------------------------------------------
#
# A bulk replay runs as a job on a worker, not inside the HTTP request or the operator's command: it can
# take minutes. Its state is one small hash, {p}:job:{id}, kept JOB_TTL_S after its last change:
#
#   state      queued | running | done | failed
#   status, type, since, until, all_actions   the filter (`until` pinned at the start: see start_job)
#   total      how many matched when it started (the store's count); `done` how many it has replayed
#   cursor_score, cursor_id   where the walk over the index has got to
#   page, page_pos            the ids of the page being replayed (JSON) and how many of them are done
#
# The page is written down before it is replayed and `done` moves with `page_pos` in one transaction, so a
# job whose worker died resumes where it stopped: an event of the interrupted page may be replayed twice
# (harmless: replays are idempotent) but is counted once, and the final count is exact.

JOB_TTL_S = 7 * 86400
JOB_PAGE = 200
JOB_LOCK_S = 15  # a runner refreshes its lock every page; a dead runner's lock lapses this long after
JOB_STATES = ("queued", "running", "done", "failed")


class EventQueue(Protocol):
    """What replaying needs of the task queue: the intake's TaskQueue, or a worker's own sender."""

    def process_event(self, event_id: str, *, queue: str = ...) -> None: ...


class JobQueue(Protocol):
    """What starting a job needs of the task queue."""

    def replay_job(self, job_id: str) -> None: ...


class JobNotStartedError(Exception):
    """The job was written down but could not be handed to a worker (the broker is unreachable)."""


# Take the job's lock only if it is free; release it only if it is still ours.
_RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _index(store: EventStore, flt: ReplayFilter) -> str:
    if flt.status:
        return f"{store.p}:st:{flt.status}"
    if flt.event_type:
        return f"{store.p}:ty:{event_types.label(flt.event_type)}"
    return f"{store.p}:all"


def _type_filter(flt: ReplayFilter) -> str | None:
    """The exact type to check on each document, when the type index alone does not say it."""
    # An undocumented type shares the `other` index with every other one; `other` itself matches them all.
    if flt.event_type and flt.event_type != event_types.OTHER:
        return flt.event_type
    return None


def _bounds(flt: ReplayFilter) -> tuple[str, str]:
    lo = "-inf" if flt.since is None else repr(flt.since)
    return lo, "+inf" if flt.until is None else repr(flt.until)


def count_matching(store: EventStore, flt: ReplayFilter, *, page: int = 1000) -> int:
    """How many events match `flt`, counted by the store itself, never listing them in memory.

    One index: ZCOUNT over the time window. Status and type: ZINTERCARD of the two indexes, or, with a time
    window too, the status index's window a page at a time with ZMSCORE against the type index. Entries of
    events that expired since the last retention sweep are still counted (the sweep drops them within a
    few reconciler runs); a job skips them, so its final count can be a little lower than this.
    """
    lo, hi = _bounds(flt)
    label = event_types.label(flt.event_type or "")
    if flt.event_type and label != flt.event_type:
        # An undocumented type: its index is `other`, shared with every undocumented type, so look at
        # each document's own type, a page at a time.
        n = offset = 0
        while True:
            index = _index(store, flt)
            members = cast(list[bytes], store.r.zrangebyscore(index, lo, hi, start=offset, num=page))
            if not members:
                return n
            pipe = store.r.pipeline(transaction=False)
            for member in members:
                pipe.hget(store.key("ev", member.decode()), "event_type")
            n += sum(1 for ty in pipe.execute() if ty is not None and text(ty) == flt.event_type)
            offset += len(members)
    if not (flt.status and flt.event_type):
        return int(store.r.zcount(_index(store, flt), lo, hi))
    status_index, type_index = f"{store.p}:st:{flt.status}", f"{store.p}:ty:{label}"
    if flt.since is None and flt.until is None:
        return int(store.r.zintercard(2, [status_index, type_index]))
    n = offset = 0
    while True:
        chunk = cast(list[str], store.r.zrangebyscore(status_index, lo, hi, start=offset, num=page))
        if not chunk:
            return n
        n += sum(1 for score in store.r.zmscore(type_index, chunk) if score is not None)
        offset += len(chunk)


def _job_key(store: EventStore, job_id: str) -> str:
    return store.key("job", job_id)


def _save(store: EventStore, job_id: str, fields: dict[str, Any], *, incr_done: int = 0) -> None:
    key = _job_key(store, job_id)
    pipe = store.r.pipeline(transaction=True)
    pipe.hset(key, mapping={k: "" if v is None else str(v) for k, v in fields.items()})
    if incr_done:
        pipe.hincrby(key, "done", incr_done)
    pipe.expire(key, JOB_TTL_S)
    pipe.execute()


def start_job(
    store: EventStore,
    queue: JobQueue,
    flt: ReplayFilter,
    *,
    all_actions: bool = False,
    now: float | None = None,
) -> dict[str, Any]:
    """Write down a bulk replay job and hand it to a worker; its view (see job_view)."""
    now = time.time() if now is None else now
    # The window ends now at the latest: events that arrive while the job runs are not part of it, so the
    # job ends, and its count is the count of what was asked for.
    flt = replace(flt, until=now if flt.until is None else min(flt.until, now))
    job_id = f"job_{int(now * 1000):012x}{secrets.token_hex(6)}"
    _save(
        store,
        job_id,
        {
            "id": job_id,
            "state": "queued",
            "status": flt.status,
            "type": flt.event_type,
            "since": None if flt.since is None else repr(flt.since),
            "until": repr(flt.until),
            "all_actions": int(all_actions),
            "total": count_matching(store, flt),
            "done": 0,
            "created_at": repr(now),
            "updated_at": repr(now),
        },
    )
    try:
        queue.replay_job(job_id)
    except Exception as exc:
        _save(store, job_id, {"state": "failed", "error": f"not started: {type(exc).__name__}"})
        raise JobNotStartedError(job_id) from exc
    view = job_view(store, job_id)
    assert view is not None
    return view


def _load(store: EventStore, job_id: str) -> dict[str, str] | None:
    raw = store.r.hgetall(_job_key(store, job_id))
    return {text(k): text(v) for k, v in raw.items()} if raw else None


def job_view(store: EventStore, job_id: str) -> dict[str, Any] | None:
    """A job as the admin API shows it: state, filter, progress, and the final count once done."""
    job = _load(store, job_id)
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


def _filter_of(job: dict[str, str]) -> ReplayFilter:
    return ReplayFilter(
        status=job.get("status") or None,
        event_type=job.get("type") or None,
        since=float(job["since"]) if job.get("since") else None,
        until=float(job["until"]) if job.get("until") else None,
    )


def _next_page(store: EventStore, job_id: str, job: dict[str, str]) -> list[str]:
    """Walk the index on from the job's cursor to the next page of matching ids, and write it down.

    The walk goes by (score, id), not by offset: replaying moves events out of the status index it walks.
    """
    flt = _filter_of(job)
    index, type_filter = _index(store, flt), _type_filter(flt)
    start, hi = _bounds(flt)
    score = job.get("cursor_score") or None
    last = job.get("cursor_id") or ""
    offset = 0
    while True:
        lo = start if score is None else score
        chunk = cast(
            list[tuple[bytes, float]],
            store.r.zrangebyscore(index, lo, hi, start=offset, num=JOB_PAGE, withscores=True),
        )
        if not chunk:
            return []
        # Members of equal score come in id order: skip those at the cursor's score up to its id.
        fresh = [(m.decode(), s) for m, s in chunk if score is None or s > float(score) or m.decode() > last]
        if not fresh:
            offset += len(chunk)
            continue
        ids = [m for m, _ in fresh]
        pipe = store.r.pipeline(transaction=False)
        for i in ids:
            pipe.hmget(store.key("ev", i), "status", "event_type")
        page, gone = [], []
        for i, (st, ty) in zip(ids, pipe.execute(), strict=True):
            if st is None:
                gone.append(i)
            elif (not flt.status or st.decode() == flt.status) and (
                not type_filter or (ty or b"").decode() == type_filter
            ):
                page.append(i)
        if gone:
            store.drop_from_indexes(gone, index)  # expired events: skipped and dropped, as listings do
        score, last = repr(fresh[-1][1]), fresh[-1][0]
        _save(
            store,
            job_id,
            {"cursor_score": score, "cursor_id": last, "page": json.dumps(page), "page_pos": 0},
        )
        if page:
            return page
        offset = 0


def run_job(
    store: EventStore,
    queue: EventQueue,
    job_id: str,
    *,
    slice_s: float = 20.0,
    clock: Callable[[], float] = time.monotonic,
) -> str | None:
    """Work on a replay job for about `slice_s` seconds; its state after ("running": send it on), or None.

    Safe to run twice at once or again after a crash: one runner holds the job's lock, another waits for it
    (a dead runner's lock lapses within JOB_LOCK_S), and the walk resumes from what is written down.
    """
    deadline = clock() + slice_s
    lock, token = f"{_job_key(store, job_id)}:lock", secrets.token_hex(8)
    while not store.r.set(lock, token, nx=True, ex=JOB_LOCK_S):
        job = _load(store, job_id)
        if job is None or job["state"] in ("done", "failed"):
            return None if job is None else job["state"]
        if clock() > deadline:
            return "busy"  # its runner is alive, and sends the job on itself
        time.sleep(0.2)
    try:
        job = _load(store, job_id)
        if job is None or job["state"] in ("done", "failed"):
            return None if job is None else job["state"]
        if job["state"] == "queued":
            now = repr(time.time())
            _save(store, job_id, {"state": "running", "started_at": now, "updated_at": now})
        all_actions = job.get("all_actions") == "1"
        page = json.loads(job.get("page") or "[]")
        pos = int(job.get("page_pos") or 0)
        while clock() < deadline:
            if pos >= len(page):
                page, pos = _next_page(store, job_id, job), 0
                if not page:
                    now = repr(time.time())
                    _save(store, job_id, {"state": "done", "finished_at": now, "updated_at": now, "page": ""})
                    return "done"
                job = _load(store, job_id) or job
                store.r.expire(lock, JOB_LOCK_S)
            event_id = page[pos]
            replayed = replay_one(store, queue, event_id, all_actions=all_actions)
            pos += 1
            _save(store, job_id, {"page_pos": pos, "updated_at": repr(time.time())}, incr_done=int(replayed))
        return "running"
    finally:
        store.r.register_script(_RELEASE_LOCK)(keys=[lock], args=[token])
