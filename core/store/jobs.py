"""Bulk replay jobs and counting: the job's small hash, its lock, the walk over an index, and the store's own
count of what a filter matches (core/replay.py runs the jobs on top of this).

A job's state is one hash, {p}:job:{id}, kept JOB_TTL_S after its last change:

    state      queued | running | done | failed
    status, type, since, until, all_actions   the filter (`until` pinned at the start)
    total      how many matched when it started (the store's count); `done` how many it has replayed
    cursor_score, cursor_id   where the walk over the index has got to
    page, page_pos            the ids of the page being replayed (JSON) and how many of them are done
"""

from __future__ import annotations

import json
from typing import Any, cast

from core.store.base import StoreBase, text
from schemas import event_types

JOB_TTL_S = 7 * 86400
JOB_PAGE = 200
JOB_LOCK_S = 15  # a runner refreshes its lock every page; a dead runner's lock lapses this long after


class Jobs(StoreBase):
    """Replay jobs and counts."""

    def _filter_index(self, status: str | None, event_type: str | None) -> str:
        if status:
            return f"{self.p}:st:{status}"
        if event_type:
            return f"{self.p}:ty:{event_types.label(event_type)}"
        return f"{self.p}:all"

    def count_matching(
        self,
        *,
        status: str | None = None,
        event_type: str | None = None,
        since: float | None = None,
        until: float | None = None,
        page: int = 1000,
    ) -> int:
        """How many events match, counted by the store itself, never listing them in memory.

        One index: ZCOUNT over the time window. Status and type: ZINTERCARD of the two indexes, or, with a
        time window too, the status index's window a page at a time with ZMSCORE against the type index.
        Entries of events that expired since the last retention sweep are still counted (the sweep drops
        them within a few reconciler runs); a job skips them, so its final count can be a little lower.
        """
        lo, hi = _bounds(since, until)
        label = event_types.label(event_type or "")
        if event_type and label != event_type:
            # An undocumented type: its index is `other`, shared with every undocumented type, so look at
            # each document's own type, a page at a time.
            n = offset = 0
            index = self._filter_index(status, event_type)
            while True:
                members = cast(list[bytes], self.r.zrangebyscore(index, lo, hi, start=offset, num=page))
                if not members:
                    return n
                pipe = self.r.pipeline(transaction=False)
                for member in members:
                    pipe.hget(self.key("ev", text(member)), "event_type")
                n += sum(1 for ty in pipe.execute() if ty is not None and text(ty) == event_type)
                offset += len(members)
        if not (status and event_type):
            return int(self.r.zcount(self._filter_index(status, event_type), lo, hi))
        status_index, type_index = f"{self.p}:st:{status}", f"{self.p}:ty:{label}"
        if since is None and until is None:
            return int(self.r.zintercard(2, [status_index, type_index]))
        n = offset = 0
        while True:
            chunk = cast(list[str], self.r.zrangebyscore(status_index, lo, hi, start=offset, num=page))
            if not chunk:
                return n
            n += sum(1 for score in self.r.zmscore(type_index, chunk) if score is not None)
            offset += len(chunk)

    def save_job(self, job_id: str, fields: dict[str, Any], *, incr_done: int = 0) -> None:
        """Write job fields (None as ""), and add to `done` in the same transaction."""
        key = self.key("job", job_id)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(key, mapping={k: "" if v is None else str(v) for k, v in fields.items()})
        if incr_done:
            pipe.hincrby(key, "done", incr_done)
        pipe.expire(key, JOB_TTL_S)
        pipe.execute()

    def load_job(self, job_id: str) -> dict[str, str] | None:
        """The job's fields, or None if unknown (or expired)."""
        raw = self.r.hgetall(self.key("job", job_id))
        return {text(k): text(v) for k, v in raw.items()} if raw else None

    def take_job_lock(self, job_id: str, token: str) -> bool:
        """Become the job's one runner if nobody holds its lock (keep_job_lock refreshes it)."""
        return bool(self.r.set(f"{self.key('job', job_id)}:lock", token, nx=True, ex=JOB_LOCK_S))

    def keep_job_lock(self, job_id: str) -> None:
        """Push our lock's expiry on (a runner does it every page)."""
        self.r.expire(f"{self.key('job', job_id)}:lock", JOB_LOCK_S)

    def release_job_lock(self, job_id: str, token: str) -> None:
        """Free the job's lock if it is still ours."""
        self.script("release_lock")(keys=[f"{self.key('job', job_id)}:lock"], args=[token])

    def next_job_page(self, job_id: str, job: dict[str, str]) -> list[str]:
        """Walk the job's index on from its cursor to the next page of matching ids, and write it down.

        The walk goes by (score, id), not by offset: replaying moves events out of the status index it walks.
        """
        status, event_type = job.get("status") or None, job.get("type") or None
        since = float(job["since"]) if job.get("since") else None
        until = float(job["until"]) if job.get("until") else None
        index = self._filter_index(status, event_type)
        # An undocumented type shares the `other` index with every other one; `other` itself matches them all.
        type_filter = event_type if event_type and event_type != event_types.OTHER else None
        start, hi = _bounds(since, until)
        score = job.get("cursor_score") or None
        last = job.get("cursor_id") or ""
        offset = 0
        while True:
            lo = start if score is None else score
            chunk = cast(
                list[tuple[bytes, float]],
                self.r.zrangebyscore(index, lo, hi, start=offset, num=JOB_PAGE, withscores=True),
            )
            if not chunk:
                return []
            # Members of equal score come in id order: skip those at the cursor's score up to its id.
            fresh = [(text(m), s) for m, s in chunk if score is None or s > float(score) or text(m) > last]
            if not fresh:
                offset += len(chunk)
                continue
            ids = [m for m, _ in fresh]
            pipe = self.r.pipeline(transaction=False)
            for i in ids:
                pipe.hmget(self.key("ev", i), "status", "event_type")
            page, gone = [], []
            for i, (st, ty) in zip(ids, pipe.execute(), strict=True):
                if st is None:
                    gone.append(i)
                elif (not status or text(st) == status) and (
                    not type_filter or text(ty or b"") == type_filter
                ):
                    page.append(i)
            if gone:
                self.drop_from_indexes(gone, index)  # expired events: skipped and dropped, as listings do
            score, last = repr(fresh[-1][1]), fresh[-1][0]
            self.save_job(
                job_id, {"cursor_score": score, "cursor_id": last, "page": json.dumps(page), "page_pos": 0}
            )
            if page:
                return page
            offset = 0


def _bounds(since: float | None, until: float | None) -> tuple[str, str]:
    return ("-inf" if since is None else repr(since)), ("+inf" if until is None else repr(until))
