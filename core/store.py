"""The raw-event store, in Redis. The intake writes it; the workers and the admin API read and update it.

Keys (prefix `vw` by default; one Redis database per deployment):

    {p}:ev:{id}        hash   the event document: status, event_type, received_at, dedup_key, attempts
                              (processing starts), unfinished_starts (starts since one last finished), ...
    {p}:raw:{id}       string the body exactly as received
    {p}:act:{id}       hash   action name -> JSON state (status, attempts, last_error, next_attempt_at, ...)
    {p}:dd:{key}       string dedup claim -> event id, expires after the dedup window
    {p}:all            zset   every event id, scored by received_at (listing, newest first)
    {p}:st:{status}    zset   event ids per status, scored by received_at
    {p}:ty:{type}      zset   event ids per event type, scored by received_at
    {p}:outbox         zset   event ids that still need a worker, scored by when to (re)try them
    {p}:once:{key}     string side-effect reservations ("pending:<holder>" while running, "done:<holder>")
    {p}:types          set    every event type that has a {p}:ty:{type} index (so a sweep can find them)
    {p}:metrics        hash   worker-side counters (settled events, action attempts, latency buckets); kept
                              by the scripts below, so every worker process and machine adds to one place
    {p}:prune:cursor   string where the retention sweep (`prune_expired`) left off

Terminal events expire (ev, raw and act keys get a TTL when they settle); their ids are then dropped from
the index zsets lazily by listings and steadily by `prune_expired`, which the reconciler calls.

Every state change of an event is one Lua script, so the document, the status indexes and the outbox never
disagree, and the intake's write is one atomic round trip. Scripts compute further key names from the prefix,
so this needs a single Redis node (or Sentinel), not Redis Cluster.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.settings import Settings

STATUSES = ("queued", "processing", "processed", "ignored", "invalid", "failed", "dead")
TERMINAL = frozenset({"processed", "ignored", "invalid", "dead"})
COMPLETE_RETRY_INTERVAL_S = 0.5
# What makes the intake answer 503 + Retry-After (Voucherify retries) instead of 500: unreachable, slow,
# full under `noeviction` (OutOfMemoryError), or a replica demoted during a failover (ReadOnlyError).
# BusyLoadingError (a restarted server still reading its AOF) is a ConnectionError already.
StoreUnavailableError = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
)

# Store raw body + document, claim the dedup key, index, and put the event in the outbox; or, when the
# dedup key is taken, count the duplicate on the original. With a Celery message (ARGV[7]), push it onto the
# queue's list too. KEYS: dedup, ev, raw, all, st:queued, outbox, queue list.
_ACCEPT = """
local existing = redis.call('GET', KEYS[1])
if existing then
  local orig = ARGV[1] .. ':ev:' .. existing
  if redis.call('EXISTS', orig) == 1 then
    redis.call('HINCRBY', orig, 'duplicates', 1)
  end
  return {0, existing}
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
redis.call('SET', KEYS[3], ARGV[6])
redis.call('HSET', KEYS[2], unpack(ARGV, 8))
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[5], ARGV[4], ARGV[2])
redis.call('ZADD', KEYS[6], ARGV[5], ARGV[2])
if ARGV[7] ~= '' then redis.call('LPUSH', KEYS[7], ARGV[7]) end
return {1, ARGV[2]}
"""

# Upper bounds (seconds) of the received -> final status histogram that _SET_STATUS keeps in {p}:metrics.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)

# Move an event to a status: document fields, status index, type index, outbox, and an expiry for
# terminal states. ARGV: prefix, id, status, now, outbox ("" keep, "-" remove, else a due time),
# ttl ("" none, else seconds), then how many actions (A) and side effects (D) come next, then A triples
# (action, state JSON, outcome to count or ""), then D triples (business key, done value, seconds to keep),
# then field/value pairs. Returns the previous status, or false if unknown. Actions and side effects are
# recorded first, so a worker settles an event and its last action's outcome in one atomic round trip.
# Reaching a terminal status is also counted in {p}:metrics here, in the same atomic step, so the counters
# cost no extra round trip and add up across every worker: settled|<status>|<type>, and on an event's first
# settlement only (a replay of a week-old event says nothing about latency) latency|<le> and latency_sum.
_SET_STATUS = (
    "local TERMINAL = {"
    + ", ".join(f"{t} = true" for t in sorted(TERMINAL))
    + "}\nlocal BUCKETS = {"
    + ", ".join(f"'{b:g}'" for b in LATENCY_BUCKETS)
    + "}\n"
    + """
local p, id, new = ARGV[1], ARGV[2], ARGV[3]
local ev = p .. ':ev:' .. id
local old = redis.call('HGET', ev, 'status')
if not old then return false end
local n = 9
for _ = 1, tonumber(ARGV[7]) do
  redis.call('HSET', p .. ':act:' .. id, ARGV[n], ARGV[n + 1])
  if ARGV[n + 2] ~= '' then
    redis.call('HINCRBY', p .. ':metrics', 'action|' .. ARGV[n + 2] .. '|' .. ARGV[n], 1)
  end
  n = n + 3
end
for _ = 1, tonumber(ARGV[8]) do
  redis.call('SET', p .. ':once:' .. ARGV[n], ARGV[n + 1], 'EX', ARGV[n + 2])
  n = n + 3
end
local score = redis.call('HGET', ev, 'received_at')
if old ~= new then
  redis.call('ZREM', p .. ':st:' .. old, id)
  redis.call('ZADD', p .. ':st:' .. new, score, id)
end
redis.call('HSET', ev, 'status', new, 'updated_at', ARGV[4])
for i = n, #ARGV, 2 do
  redis.call('HSET', ev, ARGV[i], ARGV[i + 1])
  if ARGV[i] == 'event_type' and ARGV[i + 1] ~= '' then
    redis.call('ZADD', p .. ':ty:' .. ARGV[i + 1], score, id)
    redis.call('SADD', p .. ':types', ARGV[i + 1])
  end
end
if TERMINAL[new] and old ~= new then
  local m = p .. ':metrics'
  local ty = redis.call('HGET', ev, 'event_type') or ''
  redis.call('HINCRBY', m, 'settled|' .. new .. '|' .. ty, 1)
  if redis.call('HSETNX', ev, 'settled_at', ARGV[4]) == 1 then
    local lat = math.max(0, tonumber(ARGV[4]) - tonumber(score))
    local le = '+Inf'
    for _, b in ipairs(BUCKETS) do
      if lat <= tonumber(b) then le = b break end
    end
    redis.call('HINCRBY', m, 'latency|' .. le, 1)
    redis.call('HINCRBYFLOAT', m, 'latency_sum', tostring(lat))
  end
end
if ARGV[5] == '-' then
  redis.call('ZREM', p .. ':outbox', id)
elseif ARGV[5] ~= '' then
  redis.call('ZADD', p .. ':outbox', ARGV[5], id)
end
local keys = {ev, p .. ':raw:' .. id, p .. ':act:' .. id}
for _, k in ipairs(keys) do
  if ARGV[6] == '' then redis.call('PERSIST', k) else redis.call('EXPIRE', k, ARGV[6]) end
end
return old
"""
)

# A worker starts an event: read it all (document fields, raw body, action states) and, unless it is finished
# or has been started too often without finishing, move it to `processing` with the outbox a lease ahead.
# One round trip where a read and a status change were two. ARGV: prefix, id, now, due, max unfinished starts.
_BEGIN = (
    "local TERMINAL = {"
    + ", ".join(f"{t} = true" for t in sorted(TERMINAL))
    + "}\n"
    + """
local p, id = ARGV[1], ARGV[2]
local ev = p .. ':ev:' .. id
local f = redis.call('HMGET', ev, 'status', 'source', 'received_at', 'event_type', 'attempts',
                     'unfinished_starts')
local raw = redis.call('GET', p .. ':raw:' .. id)
if not f[1] or not raw then return false end
local acts = redis.call('HGETALL', p .. ':act:' .. id)
local attempts, unfinished = tonumber(f[5] or 0), tonumber(f[6] or 0)
if TERMINAL[f[1]] or unfinished >= tonumber(ARGV[5]) then
  return {f[1], f[2] or '', f[3], f[4] or '', attempts, unfinished, raw, acts, 0}
end
if f[1] ~= 'processing' then
  redis.call('ZREM', p .. ':st:' .. f[1], id)
  redis.call('ZADD', p .. ':st:processing', f[3], id)
end
redis.call('HSET', ev, 'status', 'processing', 'updated_at', ARGV[3], 'attempts', attempts + 1,
           'unfinished_starts', unfinished + 1)
redis.call('ZADD', p .. ':outbox', ARGV[4], id)
return {f[1], f[2] or '', f[3], f[4] or '', attempts, unfinished, raw, acts, 1}
"""
)

# Claim outbox entries that are due: push each one's due time forward by the lease, so concurrent
# reconcilers never hand out the same entry twice. ARGV: now, lease, limit.
_CLAIM_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], ARGV[1] + ARGV[2], id)
end
return ids
"""

# Reserve a side effect under a business key: "acquired", "done" (already happened) or "busy".
_RESERVE = """
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], 'pending:' .. ARGV[1], 'EX', ARGV[2])
  return 'acquired'
end
if string.sub(v, 1, 5) == 'done:' then return 'done' end
if v == 'pending:' .. ARGV[1] then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return 'acquired'
end
return 'busy'
"""

# Release a reservation we hold (the side effect failed and will be retried).
_RELEASE = """
if redis.call('GET', KEYS[1]) == 'pending:' .. ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class StoredEvent:
    """What a worker needs of a stored event."""

    id: str
    status: str
    raw: bytes
    source: str
    received_at: float
    event_type: str
    attempts: int
    unfinished_starts: int = 0  # starts since a run last finished: each one a worker lost mid-event


@dataclass(frozen=True)
class Done:
    """A side effect that happened: business key `key` is marked done by `holder` for `ttl` seconds.

    Recording it is worth waiting for (`patience` seconds, while the holder's reservation still keeps others
    off the key): if it were lost, the reservation would lapse and a retry would repeat the side effect.
    """

    key: str
    holder: str
    ttl: int
    patience: float = 0.0


@dataclass
class WorkerCounters:
    """Worker-side counters read back from {p}:metrics."""

    settled: dict[tuple[str, str], int] = field(default_factory=dict)  # (status, event type) -> count
    actions: dict[tuple[str, str], int] = field(default_factory=dict)  # (outcome, action) -> attempts
    latency_buckets: dict[str, int] = field(default_factory=dict)  # upper bound ("+Inf" last) -> count
    latency_sum: float = 0.0


def new_event_id(now: float | None = None) -> str:
    """Time-ordered, unguessable: 12 hex digits of milliseconds, then 12 random."""
    ms = int((time.time() if now is None else now) * 1000)
    return f"evt_{ms:012x}{secrets.token_hex(6)}"


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO-8601 UTC with milliseconds and a Z, like Voucherify's."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def connect(url: str, *, timeout: float = 5.0) -> redis.Redis:
    """A client that fails fast (one try, short timeouts), so an outage becomes a 503 quickly."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=min(timeout, 2.0),
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )


class EventStore:
    """Events, their actions' state and the outbox, in one Redis."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.r = client
        self.settings = settings
        self.p = settings.key_prefix
        self._accept = client.register_script(_ACCEPT)
        self._set_status = client.register_script(_SET_STATUS)
        self._claim_due = client.register_script(_CLAIM_DUE)
        self._begin = client.register_script(_BEGIN)
        self._reserve = client.register_script(_RESERVE)
        self._release = client.register_script(_RELEASE)

    @classmethod
    def from_settings(cls, settings: Settings, *, timeout: float = 5.0) -> EventStore:
        """A store on `settings.redis_url`."""
        return cls(connect(settings.redis_url, timeout=timeout), settings)

    def key(self, kind: str, ident: str) -> str:
        return f"{self.p}:{kind}:{ident}"

    # -- intake ---------------------------------------------------------------------------------------

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
        fields: dict[str, str | int] = {
            "id": event_id,
            "status": "queued",
            "event_type": "",
            "received_at": repr(now),
            "updated_at": repr(now),
            "dedup_key": dedup_key,
            "attempts": 0,
            "duplicates": 0,
            "source": source,
            "secret": secret,
            "headers": json.dumps(dict(headers)),
            "size": len(raw),
        }
        flat: list[Any] = [x for kv in fields.items() for x in kv]
        p = self.p
        created, ident = self._accept(
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
                repr(now),
                repr(now + self.settings.outbox_lease_s),
                raw,
                message,
                *flat,
            ],
        )
        return ident.decode(), bool(created)

    def ping(self) -> bool:
        """True when the store answers."""
        try:
            return bool(self.r.ping())
        except StoreUnavailableError:
            return False

    # -- workers --------------------------------------------------------------------------------------

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
        )
        pipe.get(self.key("raw", event_id))
        (status, source, received_at, event_type, attempts, unfinished), raw = pipe.execute()
        if status is None or raw is None:
            return None
        return StoredEvent(
            id=event_id,
            status=status.decode(),
            raw=raw,
            source=(source or b"").decode(),
            received_at=float(received_at or 0),
            event_type=(event_type or b"").decode(),
            attempts=int(attempts or 0),
            unfinished_starts=int(unfinished or 0),
        )

    def begin(
        self, event_id: str, *, now: float, max_starts: int
    ) -> tuple[StoredEvent, dict[str, dict[str, Any]], bool] | None:
        """Load an event for processing and, if it may run, mark it `processing` (one round trip).

        Returns (the event as it was, its actions' states, whether it was started), or None if unknown.
        """
        res = self._begin(
            args=[self.p, event_id, repr(now), repr(now + self.settings.outbox_lease_s), max_starts]
        )
        if not res:
            return None
        status, source, received_at, event_type, attempts, unfinished, raw, acts, started = res
        ev = StoredEvent(
            id=event_id,
            status=status.decode(),
            raw=raw,
            source=source.decode(),
            received_at=float(received_at or 0),
            event_type=event_type.decode(),
            attempts=int(attempts),
            unfinished_starts=int(unfinished),
        )
        actions = {acts[i].decode(): json.loads(acts[i + 1]) for i in range(0, len(acts), 2)}
        return ev, actions, bool(started)

    def set_status(
        self,
        event_id: str,
        status: str,
        *,
        outbox: float | bool | None = None,
        now: float | None = None,
        actions: Mapping[str, Mapping[str, Any]] | None = None,
        done: Sequence[Done] = (),
        **fields: str | int | float,
    ) -> str | None:
        """Move an event to `status`, updating fields; outbox=False removes it, a number (re)schedules it.

        Terminal statuses start the retention clock; others keep the event forever. Returns the old status.
        `actions` (name -> state, each attempt counted under its status) and `done` are written in the same
        atomic round trip: how a worker settles an event and its last action's outcome at once.
        """
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        now = time.time() if now is None else now
        if outbox is False:
            box = "-"
        elif outbox is None or outbox is True:
            box = ""
        else:
            box = repr(float(outbox))
        if status in TERMINAL:
            keep = (
                self.settings.retention_processed_s
                if status in ("processed", "ignored")
                else (self.settings.retention_failed_s)
            )
            ttl = str(keep)
        else:
            ttl = ""
        actions = actions or {}
        args: list[str | int] = [self.p, event_id, status, repr(now), box, ttl, len(actions), len(done)]
        for name, state in actions.items():
            args += [name, json.dumps(state, separators=(",", ":")), state.get("status") or ""]
        for d in done:
            args += [d.key, f"done:{d.holder}", d.ttl]
        args += [str(x) for kv in fields.items() for x in kv]
        old = self._patiently(lambda: self._set_status(args=args), done)
        return old.decode() if old else None

    def actions(self, event_id: str) -> dict[str, dict[str, Any]]:
        """Each action's state, by action name."""
        raw = self.r.hgetall(self.key("act", event_id))
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    def put_action(
        self, event_id: str, name: str, state: Mapping[str, Any], *, outcome: str | None = None
    ) -> None:
        """Save an action's state; with `outcome`, also count the attempt in {p}:metrics, same round trip."""
        value = json.dumps(state, separators=(",", ":"))
        if outcome is None:
            self.r.hset(self.key("act", event_id), name, value)
            return
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self.key("act", event_id), name, value)
        pipe.hincrby(f"{self.p}:metrics", f"action|{outcome}|{name}", 1)
        pipe.execute()

    def _patiently(self, write: Callable[[], Any], done: Sequence[Done]) -> Any:
        """`write()`; with side effects to record, retried for up to their patience if the store is away.

        Retrying is safe: every write that records side effects is idempotent except an attempt's metrics
        count, which a reply lost after the write took effect can count twice.
        """
        deadline = time.monotonic() + max((d.patience for d in done), default=0.0)
        while True:
            try:
                return write()
            except StoreUnavailableError:
                if time.monotonic() + COMPLETE_RETRY_INTERVAL_S > deadline:
                    raise
                time.sleep(COMPLETE_RETRY_INTERVAL_S)

    def claim_due(self, now: float | None = None, *, limit: int = 500) -> list[str]:
        """Outbox entries due now, each pushed a lease forward so nobody else claims it meanwhile."""
        now = time.time() if now is None else now
        ids = self._claim_due(
            keys=[f"{self.p}:outbox"], args=[repr(now), self.settings.outbox_lease_s, limit]
        )
        return [i.decode() for i in ids]

    def statuses(self, event_ids: Sequence[str]) -> list[str | None]:
        """The status of each event (None for an unknown one), in one round trip."""
        pipe = self.r.pipeline(transaction=False)
        for event_id in event_ids:
            pipe.hget(self.key("ev", event_id), "status")
        return [s.decode() if s else None for s in pipe.execute()] if event_ids else []

    def outbox_size(self) -> int:
        return int(self.r.zcard(f"{self.p}:outbox"))

    def reserve(self, key: str, holder: str, ttl: int) -> str:
        """Reserve side effect `key` for `holder`: "acquired", "done" or "busy" (someone else is on it)."""
        return self._reserve(keys=[self.key("once", key)], args=[holder, ttl]).decode()

    def reserved_for(self, key: str) -> float | None:
        """Seconds until reservation `key` lapses (None if it is not held or never lapses)."""
        ms = self.r.pttl(self.key("once", key))
        return ms / 1000 if ms and ms > 0 else None

    def complete(self, key: str, holder: str, ttl: int, *, patience: float = 0.0) -> None:
        """Record that side effect `key` happened, so nobody repeats it within `ttl`.

        The side effect did happen: if the store does not answer, keep trying for up to `patience`
        seconds (while our reservation still keeps others off it) rather than let a retry repeat it.
        """
        done = Done(key, holder, ttl, patience)
        self._patiently(lambda: self.r.set(self.key("once", key), f"done:{holder}", ex=ttl), [done])

    def release(self, key: str, holder: str) -> None:
        """Give up a reservation we hold, so a retry can take it."""
        self._release(keys=[self.key("once", key)], args=[holder])

    def reset_for_replay(self, event_id: str, *, all_actions: bool = False, now: float | None = None) -> bool:
        """Make an event runnable again: its failed/dead (or all) actions pending, the event queued."""
        now = time.time() if now is None else now
        if not self.r.exists(self.key("ev", event_id)):
            return False
        for name, state in self.actions(event_id).items():
            if all_actions or state.get("status") in ("failed", "dead", "pending", "running"):
                state.update(
                    status="pending",
                    attempts=0,
                    first_attempt_at=None,
                    next_attempt_at=None,
                    replays=int(state.get("replays", 0)) + 1,
                )
                self.put_action(event_id, name, state)
        # An event that went dead because its worker kept dying (too_many_starts) gets its full budget of
        # starts again, like the actions their attempts; `attempts` keeps counting, as history.
        self.set_status(
            event_id,
            "queued",
            outbox=now + self.settings.outbox_lease_s,
            now=now,
            reason="replay",
            unfinished_starts=0,
        )
        self.r.hincrby(self.key("ev", event_id), "replays", 1)
        return True

    # -- admin ----------------------------------------------------------------------------------------

    def document(self, event_id: str) -> dict[str, Any] | None:
        """The event as the admin API shows it, without the raw body."""
        pipe = self.r.pipeline(transaction=False)
        pipe.hgetall(self.key("ev", event_id))
        pipe.hgetall(self.key("act", event_id))
        ev, acts = pipe.execute()
        return _document(ev, acts)

    def raw(self, event_id: str) -> bytes | None:
        return self.r.get(self.key("raw", event_id))

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
            else f"{self.p}:ty:{event_type}"
            if event_type
            else f"{self.p}:all"
        )
        lo = "-inf" if since is None else repr(since)
        hi = "+inf" if until is None else repr(until)
        offset = 0
        while True:
            if newest_first:
                chunk = self.r.zrevrangebyscore(index, hi, lo, start=offset, num=page)
            else:
                chunk = self.r.zrangebyscore(index, lo, hi, start=offset, num=page)
            if not chunk:
                return
            ids = [c.decode() for c in chunk]
            pipe = self.r.pipeline(transaction=False)
            for i in ids:
                pipe.hmget(self.key("ev", i), "status", "event_type")
            gone: list[str] = []
            for i, (st, ty) in zip(ids, pipe.execute(), strict=True):
                if st is None:
                    gone.append(i)
                    continue
                if (status and st.decode() != status) or (event_type and (ty or b"").decode() != event_type):
                    continue
                yield i
            offset += len(ids)
            if gone:
                self._prune(gone, index)
                offset -= len(gone)

    def _prune(self, ids: Sequence[str], index: str) -> None:
        # The type of an expired event is gone with it, so its id is dropped from every type index.
        types = [t.decode() for t in self.r.smembers(f"{self.p}:types")]
        pipe = self.r.pipeline(transaction=False)
        for key in {
            index,
            f"{self.p}:all",
            f"{self.p}:outbox",
            *(f"{self.p}:st:{s}" for s in STATUSES),
            *(f"{self.p}:ty:{t}" for t in types),
        }:
            pipe.zrem(key, *ids)
        pipe.execute()

    def prune_expired(self, *, now: float | None = None, batch: int = 500, budget: int = 5000) -> int:
        """Drop the index entries of expired events, looking at no more than `budget` entries per call.

        Called by every reconciler run. It walks `{p}:all` oldest first from where the last call stopped,
        and starts over once it has seen everything old enough to have expired, so each call is cheap and
        bounded and every entry is looked at again within a few runs. Returns how many ids were dropped.
        """
        now = time.time() if now is None else now
        # A terminal event expires `retention` after it settled, so never sooner than that after it was
        # received: anything received more recently is surely alive and not worth a look.
        horizon = now - min(self.settings.retention_processed_s, self.settings.retention_failed_s)
        cursor_key = f"{self.p}:prune:cursor"
        cursor = (self.r.get(cursor_key) or b"-inf").decode()
        dropped = seen = 0
        while seen < budget:
            lo = cursor if cursor == "-inf" else f"({cursor}"
            chunk = self.r.zrangebyscore(f"{self.p}:all", lo, repr(horizon), 0, batch, withscores=True)
            pipe = self.r.pipeline(transaction=False)
            for member, _ in chunk:
                pipe.exists(self.key("ev", member.decode()))
            gone = [m.decode() for (m, _), alive in zip(chunk, pipe.execute(), strict=True) if not alive]
            if gone:
                self._prune(gone, f"{self.p}:all")
            dropped += len(gone)
            seen += len(chunk)
            if len(chunk) < batch:
                cursor = "-inf"  # a full pass: next call starts again from the oldest
                self._forget_empty_types()
                break
            cursor = repr(chunk[-1][1])
        self.r.set(cursor_key, cursor)
        return dropped

    def _forget_empty_types(self) -> None:
        types = [t.decode() for t in self.r.smembers(f"{self.p}:types")]
        pipe = self.r.pipeline(transaction=False)
        for t in types:
            pipe.exists(f"{self.p}:ty:{t}")
        empty = [t for t, n in zip(types, pipe.execute(), strict=True) if not n]
        if empty:
            # A concurrent event of such a type re-adds it when it settles: the set heals itself.
            self.r.srem(f"{self.p}:types", *empty)

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
        if not ids:
            return []
        pipe = self.r.pipeline(transaction=False)
        for i in ids:
            pipe.hgetall(self.key("ev", i))
            pipe.hgetall(self.key("act", i))
        res = pipe.execute()
        docs = (_document(res[k], res[k + 1]) for k in range(0, len(res), 2))
        return [d for d in docs if d is not None]

    def oldest_unfinished(self) -> float | None:
        """Received time of the oldest event not yet in a terminal status."""
        pipe = self.r.pipeline(transaction=False)
        for s in ("queued", "processing", "failed"):
            pipe.zrange(f"{self.p}:st:{s}", 0, 0, withscores=True)
        firsts = [row[0][1] for row in pipe.execute() if row]
        return min(firsts) if firsts else None

    def worker_counters(self) -> WorkerCounters:
        """The counters the workers keep in {p}:metrics, summed over every worker process and machine."""
        out = WorkerCounters()
        for key, value in self.r.hgetall(f"{self.p}:metrics").items():
            kind, _, rest = key.decode().partition("|")
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
        return out

    def counts(self) -> dict[str, int]:
        """How many events are in each status."""
        pipe = self.r.pipeline(transaction=False)
        for s in STATUSES:
            pipe.zcard(f"{self.p}:st:{s}")
        return dict(zip(STATUSES, (int(n) for n in pipe.execute()), strict=True))


def _document(ev: Mapping[bytes, bytes], acts: Mapping[bytes, bytes]) -> dict[str, Any] | None:
    if not ev:
        return None
    d = {k.decode(): v.decode() for k, v in ev.items()}
    actions = {}
    for name, state in sorted(acts.items()):
        s = json.loads(state)
        s["next_attempt_at"] = iso(s.get("next_attempt_at"))
        for h in s.get("history", []):
            h["at"] = iso(h.get("at"))
        actions[name.decode()] = s
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
        "actions": actions,
    }
