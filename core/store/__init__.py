"""The raw-event store, in Redis. The intake writes it; the workers and the admin API read and update it.

Keys (prefix `vw` by default; one Redis database per deployment):

    {p}:ev:{id}        hash   the event document: status, event_type, received_at, dedup_key, attempts
                              (processing starts), unfinished_starts (starts since one last finished),
                              handoff_id / handoff_at / handoff_queue (the reconciler's message that no
                              worker has started yet), handoffs (how many it sent), ...
    {p}:raw:{id}       string the body exactly as received
    {p}:act:{id}       hash   action name -> JSON state (status, attempts, last_error, next_attempt_at, ...)
    {p}:dd:{key}       string dedup claim -> event id, expires after the dedup window
    {p}:all            zset   every event id, scored by received_at (listing, newest first)
    {p}:st:{status}    zset   event ids per status, scored by received_at
    {p}:ty:{type}      zset   event ids per event type, scored by received_at; a type Voucherify does not
                              document is indexed as `other` (schemas.event_types), so senders cannot grow
                              the keyspace; the document keeps the real string
    {p}:outbox         zset   event ids that still need a worker, scored by when to (re)try them
    {p}:started:{queue} string the latest send time of a message a worker started from that queue (the
                              reconciler's evidence that an older message on it is lost)
    {p}:once:{key}     string side-effect reservations ("pending:<holder>" while running, "done:<holder>")
    {p}:types          set    every type label that has a {p}:ty:{type} index (so a sweep can find them)
    {p}:metrics        hash   worker-side counters (settled events, action attempts, latency buckets, late
                              deliveries); kept by the scripts below, so every worker process and machine
                              adds to one place
    {p}:rate:{hour}    hash   settled events per minute: "<minute>|<status>" -> count (the console's chart);
                              one per hour since the epoch, expiring after two days
    {p}:console:session:{id}  string  a console login (expires after CONSOLE_IDLE_SECONDS without use)
    {p}:console:fail:{client} string  wrong console tokens from one client in the current window
    {p}:routes         string the routes table the last worker to start published (JSON; core/store/routes.py)
    {p}:prune:cursor   string where the retention sweep (`prune_expired`) left off
    {p}:job:{id}       hash   a bulk replay job (jobs.py), and {p}:job:{id}:lock its one runner
    {p}:mail:status    string what the last worker to start found about the SMTP server (core.mailstatus)
    {p}:compact:{status} string where compacting settled bodies (no archive) got to in that status's index
    {p}:dup:late       hash   event id -> duplicate deliveries that arrived while the event was not in Redis
                              (archived); the archiver's pass adds them to the archived row and empties it

With an archive (core/archive), a settled event's ev, raw and act keys and its index entries are deleted once
it is archived (`archiving`, lua/forget.lua); its dedup claim, reservations and counters stay. Without one,
a settled event's body is compressed in place (`raw_codec` on its document names the codec).

Terminal events expire (ev, raw and act keys get a TTL when they settle); their ids are then dropped from
the index zsets lazily by listings and steadily by `prune_expired`, which the reconciler calls.

The store is split along its seams: `deliveries` (the intake's write), `life` (an event's life in the
workers), `reservations` (side effects at most once), `queries` (admin API, CLI, metrics), `retention`,
`jobs` (bulk replays) and `archiving` (moving settled events to the disk archive); their Lua scripts are
in `lua/`, each starting with its KEYS, ARGV and what it returns.

Every state change of an event is one Lua script, so the document, the status indexes and the outbox never
disagree, and the intake's write is one atomic round trip. Scripts compute further key names from the prefix,
so this needs a single Redis node (or Sentinel), not Redis Cluster.
"""

from __future__ import annotations

from core.settings import Settings
from core.states import STATUSES, TERMINAL
from core.store.archiving import Archiving
from core.store.base import (
    COMPLETE_RETRY_INTERVAL_S,
    Done,
    StoredEvent,
    StoreUnavailableError,
    connect,
    iso,
    new_event_id,
)
from core.store.deliveries import Deliveries
from core.store.jobs import Jobs
from core.store.life import Begun, Claim, EventLife, HandOff, Settle, Start
from core.store.queries import Queries, WorkerCounters
from core.store.reservations import Reservations
from core.store.retention import Retention
from core.store.routes import Routes

# Upper bounds (seconds) of the received -> first final status histogram that lua/set_status.lua keeps in
# {p}:metrics (the script spells them too; tests/core/store/test_scripts.py keeps the two in agreement).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)

__all__ = [
    "COMPLETE_RETRY_INTERVAL_S",
    "LATENCY_BUCKETS",
    "STATUSES",
    "TERMINAL",
    "Begun",
    "Claim",
    "Done",
    "EventStore",
    "HandOff",
    "Settle",
    "Start",
    "StoreUnavailableError",
    "StoredEvent",
    "WorkerCounters",
    "connect",
    "iso",
    "new_event_id",
]


class EventStore(Deliveries, EventLife, Reservations, Queries, Retention, Jobs, Routes, Archiving):
    """Events, their actions' state, reservations and the outbox, in one Redis."""

    @classmethod
    def from_settings(cls, settings: Settings, *, timeout: float = 5.0) -> EventStore:
        """A store on `settings.redis_url`."""
        return cls(connect(settings.redis_url, timeout=timeout), settings)
