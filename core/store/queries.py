"""Queries for the admin API, the CLI and /metrics: documents, listings, counts and the workers' counters."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from core.archive import codec
from core.states import STATUSES, UNFINISHED
from core.store.base import StoreBase, StoredEvent, iso, text
from schemas import event_types


@dataclass
class WorkerCounters:
    """Worker-side counters read back from {p}:metrics."""

    settled: dict[tuple[str, str], int] = field(default_factory=dict)  # (status, event type) -> count
    actions: dict[tuple[str, str], int] = field(default_factory=dict)  # (outcome, action) -> attempts
    latency_buckets: dict[str, int] = field(default_factory=dict)  # upper bound ("+Inf" last) -> count
    latency_sum: float = 0.0
    late: int = 0  # deliveries whose event was older than the dedup window when validated
    handoffs: int = 0  # messages the reconciler sent
    mirror_stale: dict[str, int] = field(default_factory=dict)  # mirror table -> stale snapshots
    archived: int = 0  # events moved to the disk archive


class Queries(StoreBase):
    """Reading events back."""

    def load(self, event_id: str) -> StoredEvent | None:
        """The stored event with its raw body, or None if unknown (or expired)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hmget(
            self.key("ev", event_id),
            "status",
            "source",
            "received_at",
            "event_type",
            "attempts",
            "unfinished_starts",
            "raw_codec",
        )
        pipe.get(self.key("raw", event_id))
        (status, source, received_at, event_type, attempts, unfinished, name), raw = pipe.execute()
        if status is None or raw is None:
            return None
        return StoredEvent(
            id=event_id,
            status=status.decode(),
            raw=codec.decompress(raw, name.decode()) if name else raw,
            source=(source or b"").decode(),
            received_at=float(received_at or 0),
            event_type=(event_type or b"").decode(),
            attempts=int(attempts or 0),
            unfinished_starts=int(unfinished or 0),
        )

    def document(self, event_id: str) -> dict[str, Any] | None:
        """The event as the admin API shows it, without the raw body."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(self.key("ev", event_id))
        pipe.hgetall(self.key("act", event_id))
        ev, acts = pipe.execute()
        return as_document(ev, acts)

    def raw(self, event_id: str) -> bytes | None:
        """The body exactly as received, or None (a body compacted once settled is expanded)."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hget(self.key("ev", event_id), "raw_codec")
        pipe.get(self.key("raw", event_id))
        name, body = pipe.execute()
        if body is None:
            return None
        body = body.encode() if isinstance(body, str) else body
        return codec.decompress(body, text(name)) if name else body

    def iter_ids(
        self,
        *,
        status: str | None = None,
        event_type: str | None = None,
        since: float | None = None,
        until: float | None = None,
        newest_first: bool = True,
        page: int = 500,
    ) -> Iterator[str]:
        """Event ids matching the filters, by received time; index entries of expired events are pruned."""
        index = (
            f"{self.p}:st:{status}"
            if status
            else f"{self.p}:ty:{event_types.label(event_type)}"
            if event_type
            else f"{self.p}:all"
        )
        # Every type in the `other` index matches a filter on `other` itself.
        type_filter = event_type if event_type and event_type != event_types.OTHER else None
        lo = "-inf" if since is None else repr(since)
        hi = "+inf" if until is None else repr(until)
        offset = 0
        while True:
            chunk = cast(
                list[bytes],
                self.r.zrevrangebyscore(index, hi, lo, start=offset, num=page)
                if newest_first
                else self.r.zrangebyscore(index, lo, hi, start=offset, num=page),
            )
            if not chunk:
                return
            ids = [text(c) for c in chunk]
            pipe = self.r.pipeline(transaction=False)
            for i in ids:
                pipe.hmget(self.key("ev", i), "status", "event_type")
            gone: list[str] = []
            for i, (st, ty) in zip(ids, pipe.execute(), strict=True):
                if st is None:
                    gone.append(i)
                    continue
                if (status and st.decode() != status) or (
                    type_filter and (ty or b"").decode() != type_filter
                ):
                    continue
                yield i
            offset += len(ids)
            if gone:
                self.drop_from_indexes(gone, index)
                offset -= len(gone)

    def list_events(
        self,
        *,
        status: str | None = None,
        event_type: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Event documents, newest first."""
        ids: list[str] = []
        for i in self.iter_ids(status=status, event_type=event_type, since=since, until=until):
            ids.append(i)
            if len(ids) >= limit:
                break
        return self.documents(ids)

    def documents(self, ids: list[str]) -> list[dict[str, Any]]:
        """The documents of `ids` in one round trip, in that order (expired ones left out)."""
        if not ids:
            return []
        pipe = self.r.pipeline(transaction=False)
        for i in ids:
            pipe.hgetall(self.key("ev", i))
            pipe.hgetall(self.key("act", i))
        res = pipe.execute()
        docs = (as_document(res[k], res[k + 1]) for k in range(0, len(res), 2))
        return [d for d in docs if d is not None]

    def oldest_unfinished(self) -> float | None:
        """Received time of the oldest event not yet in a terminal status."""
        pipe = self.r.pipeline(transaction=False)
        for s in UNFINISHED:
            pipe.zrange(f"{self.p}:st:{s}", 0, 0, withscores=True)
        firsts = [row[0][1] for row in pipe.execute() if row]
        return min(firsts) if firsts else None

    def worker_counters(self) -> WorkerCounters:
        """The counters the workers keep in {p}:metrics, summed over every worker process and machine."""
        out = WorkerCounters()
        for key, value in self.r.hgetall(f"{self.p}:metrics").items():
            kind, _, rest = text(key).partition("|")
            if kind == "settled":
                status, _, event_type = rest.partition("|")
                out.settled[(status, event_type)] = int(value)
            elif kind == "action":
                outcome, _, name = rest.partition("|")
                out.actions[(outcome, name)] = int(value)
            elif kind == "latency":
                out.latency_buckets[rest] = int(value)
            elif kind == "latency_sum":
                out.latency_sum = float(value)
            elif kind == "late":
                out.late = int(value)
            elif kind == "mirror_stale":
                out.mirror_stale[rest] = int(value)
            elif kind == "reconciler" and rest == "handed_over":
                out.handoffs = int(value)
            elif kind == "archive" and rest == "moved":
                out.archived = int(value)
        return out

    def settled_per_minute(self, *, since: float, until: float) -> dict[int, dict[str, int]]:
        """Events that reached a final status, by minute (since the epoch) and status, in [since, until)."""
        first, last = int(since // 60), int((until - 1e-9) // 60)
        pipe = self.r.pipeline(transaction=False)
        hours = range(first // 60, last // 60 + 1)
        for hour in hours:
            pipe.hgetall(self.key("rate", str(hour)))
        out: dict[int, dict[str, int]] = {}
        for row in pipe.execute():
            for key, value in row.items():
                minute, _, status = text(key).partition("|")
                if first <= int(minute) <= last:
                    out.setdefault(int(minute), {})[status] = int(value)
        return out

    def outbox_size(self) -> int:
        """Events that still need a worker (queued, retrying, or waiting for the reconciler)."""
        return int(self.r.zcard(f"{self.p}:outbox"))

    def counts(self) -> dict[str, int]:
        """How many events are in each status."""
        pipe = self.r.pipeline(transaction=False)
        for s in STATUSES:
            pipe.zcard(f"{self.p}:st:{s}")
        return dict(zip(STATUSES, (int(n) for n in pipe.execute()), strict=True))


def as_document(
    ev: Mapping[bytes, bytes] | Mapping[str, str],
    acts: Mapping[bytes, bytes] | Mapping[str, str],
    archived_at: float | None = None,
) -> dict[str, Any] | None:
    """The event as the admin API shows it, from its document's and actions' hashes (Redis's or the
    archive's copy of them); `archived_at` set only for an event read from the archive."""
    if not ev:
        return None
    d = {text(k): text(v) for k, v in ev.items()}
    actions = {}
    for name, state in sorted((text(k), v) for k, v in acts.items()):
        s = json.loads(state)
        s["next_attempt_at"] = iso(s.get("next_attempt_at"))
        s["first_attempt_at"] = iso(s.get("first_attempt_at"))
        for h in s.get("history", []):
            h["at"] = iso(h.get("at"))
        actions[name] = s
    return {
        "id": d["id"],
        "status": d.get("status"),
        "event_type": d.get("event_type") or None,
        "received_at": iso(float(d["received_at"])),
        "updated_at": iso(float(d.get("updated_at") or d["received_at"])),
        "dedup_key": d.get("dedup_key"),
        "source": d.get("source") or None,
        "attempts": int(d.get("attempts") or 0),
        "duplicates": int(d.get("duplicates") or 0),
        "reason": d.get("reason") or None,
        "errors": json.loads(d["errors"]) if d.get("errors") else None,
        "size": int(d.get("size") or 0),
        # The signed event.created_at was older than the dedup window: a resend, not a retry (processed
        # all the same; each action's own memory keeps it from acting twice).
        "late": d.get("late") == "1",
        # When the event moved to the disk archive (core/archive); None while it is in Redis.
        "archived_at": iso(archived_at),
        "actions": actions,
    }
