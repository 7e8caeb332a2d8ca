"""The reconciler under a backlog that never drains: it neither multiplies messages nor forgets a lost one.

Real processes: a Celery worker with its embedded beat (the reconciler), the embedded Valkey as store and
broker, a real SMTP server. The backlog is made by a worker slower than the traffic; the queues are read
straight from the broker's Redis lists, the way kombu keeps them.
"""

from __future__ import annotations

import base64
import json
import threading
from collections import Counter

import pytest

from core.queue import LIVE_QUEUE, PROCESS_EVENT, REPLAY_QUEUE
from core.store import EventStore
from ingest.dedup import dedup_key
from tests.faults.helpers import (
    LEASE_S,
    Intake,
    Stopwatch,
    email_of,
    fault_settings,
    publication,
    wait_settled,
)
from tests.support import signed, wait_for

pytestmark = pytest.mark.integration


def settled(store) -> int:
    return sum(store.worker_counters().settled.values())


def waiting_messages(store, queue: str) -> Counter[str]:
    """How many process_event messages wait on `queue`, per event id."""
    out: Counter[str] = Counter()
    for raw in store.r.lrange(queue, 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] != PROCESS_EVENT:
            continue
        args = json.loads(base64.b64decode(message["body"]))[0]
        out[args[0]] += 1
    return out


@pytest.mark.timeout(150)
def test_a_backlog_longer_than_the_lease_gets_one_message_per_event(
    redis_url, tmp_path, workers, smtp_sink, store
):
    """Regression: events retrying (`failed`) behind a replay backlog longer than the lease were handed over
    again every lease while their last message still waited, so the backlog fed itself. Now an event has
    at most one message waiting, however long the backlog lasts; once the server accepts, one email each."""
    settings = fault_settings(redis_url, tmp_path)
    intake = Intake(settings)
    smtp_sink.refuse_code = 451  # every email deferred: each event retries, again and again
    smtp_sink.rcpt_delay = 0.1  # and each attempt is slow, so one worker process falls behind
    worker = workers(
        redis_url,
        concurrency=1,
        SMTP_URL=smtp_sink.url,
        ACTION_BACKOFF_CAP_SECONDS="1",
        ACTION_MAX_ATTEMPTS="1000",
        # Small batches: a worker holds 2 x WORKER_BATCH_SIZE messages off the queue (prefetch), and the
        # backlog is measured on the queue itself.
        WORKER_BATCH_SIZE="4",
    )
    docs = [publication() for _ in range(80)]
    ids = [intake.post(doc)["id"] for doc in docs]

    clock = Stopwatch()
    worst: Counter[str] = Counter()
    depths = []
    # Sample the replay queue for 4 leases of backlog.
    while clock() < 6 * LEASE_S:
        waiting = waiting_messages(store, REPLAY_QUEUE)
        depths.append(sum(waiting.values()))
        for event_id, n in waiting.items():
            worst[event_id] = max(worst[event_id], n)
        threading.Event().wait(0.2)
    backlog_s = max(depths) * 0.1  # at least 0.1 s per attempt (RCPT), one process
    assert backlog_s > LEASE_S, f"no backlog longer than the lease: at most {max(depths)} waiting"
    handed = int(store.r.hget(f"{store.p}:metrics", "reconciler|handed_over") or 0)
    multiplied = {i: n for i, n in worst.items() if n > 1}
    assert not multiplied, f"{len(multiplied)} events had several messages waiting: {multiplied}"

    smtp_sink.refuse_code = None
    statuses = wait_settled(store, ids, timeout=60)
    assert set(statuses.values()) == {"processed"}
    assert [d for d in docs if len(smtp_sink.to(email_of(d))) != 1] == []
    assert worker.popen.poll() is None
    print(
        f"\nreconciler backlog: replay queue up to {max(depths)} messages (>= {backlog_s:.0f}s of work, "
        f"lease {LEASE_S}s); at most {max(worst.values(), default=0)} waiting per event; the reconciler "
        f"handed over {handed} messages in {6 * LEASE_S}s for {len(ids)} events"
    )


@pytest.mark.timeout(150)
def test_a_lost_message_is_resent_while_the_queue_never_drains(redis_url, tmp_path, workers, smtp_sink):
    """Regression: a `queued` event whose message was lost waited until the queues were empty, so under
    constant traffic it was never handed over (and the reconciler's own task, queued behind the live
    backlog, never ran). Now it is handed over once, while the live queue stays busy, and processed."""
    settings = fault_settings(redis_url, tmp_path)
    store = EventStore.from_settings(settings)  # the workers' lease
    smtp_sink.rcpt_delay = 0.05
    workers(redis_url, concurrency=1, SMTP_URL=smtp_sink.url)
    depth = 150  # a live backlog longer than the lease (measured below)
    stop = threading.Event()
    errors: list[BaseException] = []
    depths: list[int] = []

    def feed() -> None:
        # Voucherify under steady load: the live queue is topped up, never allowed to drain.
        try:
            intake = Intake(settings)
            while not stop.is_set():
                n = store.r.llen(LIVE_QUEUE)
                depths.append(n)
                if n < depth:
                    for _ in range(depth - n):
                        intake.post(publication())
                stop.wait(0.05)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        wait_for(lambda: store.r.llen(LIVE_QUEUE) >= depth // 2, timeout=20, what="a live backlog")
        # An acknowledged delivery whose enqueue was lost: stored, in the outbox, no message anywhere.
        body, _ = signed(publication())
        lost, _ = store.accept(body, dedup_key=dedup_key(body), headers={}, secret="s")
        clock, settled_before, since = Stopwatch(), settled(store), len(depths)
        handed_at: list[float] = []

        def processed() -> bool:
            ev = store.r.hmget(store.key("ev", lost), "status", "handoff_at")
            if ev[1] and not handed_at:
                handed_at.append(clock())
            return ev[0] == b"processed"

        wait_for(processed, timeout=90, interval=0.1, what="the lost event to be processed")
        processed_s = clock()
        per_event_s = processed_s / (settled(store) - settled_before)
    finally:
        stop.set()
        feeder.join(10)
    assert not errors, errors
    kept = depths[since:]
    assert min(kept) > 0, "the live queue drained: not the situation under test"
    ev = store.r.hgetall(store.key("ev", lost))
    assert int(ev[b"handoffs"]) == 1, ev
    wait_s = round(sum(kept) / len(kept) * per_event_s, 1)  # how long a message waited in the live queue
    assert wait_s > LEASE_S, f"the live backlog was only {wait_s}s of work: not the situation under test"
    handed = f"{handed_at[0]}s" if handed_at else "?"
    print(
        f"\nlost message: live queue kept at {min(kept)}-{max(kept)} messages (~{wait_s}s of work); the lost "
        f"event was handed over {handed} after it was stored (lease {LEASE_S}s), once, and processed "
        f"{processed_s}s after it was stored"
    )
