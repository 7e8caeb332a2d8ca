import json

from ingest.dedup import dedup_key
from workers import reconciler


def stored(store, n, *, now):
    ids = []
    for i in range(n):
        raw = json.dumps({"event": {"id": f"ev{i}", "type": "voucher.updated"}, "data": {}}).encode()
        ids.append(store.accept(raw, dedup_key=dedup_key(raw), headers={}, secret="s", now=now)[0])
    return ids


class TestReconcile:
    def test_hands_over_events_past_their_lease(self, store):
        """Stored but never picked up (the enqueue was lost): handed over once its lease is past."""
        ids = stored(store, 3, now=1000.0)
        sent = []
        later = 1000.0 + store.settings.outbox_lease_s + 1
        assert reconciler.reconcile(store, sent.append, now=later) == 3
        assert sorted(sent) == sorted(ids)

    def test_nothing_before_the_lease(self, store):
        stored(store, 2, now=1000.0)
        sent = []
        assert reconciler.reconcile(store, sent.append, now=1001.0) == 0
        assert sent == []

    def test_claims_once_per_lease(self, store):
        """A second pass right after the first does not send the same events again."""
        stored(store, 2, now=1000.0)
        later = 1000.0 + store.settings.outbox_lease_s + 1
        sent = []
        reconciler.reconcile(store, sent.append, now=later)
        reconciler.reconcile(store, sent.append, now=later + 1)
        assert len(sent) == 2

    def test_queued_events_wait_while_the_broker_has_a_backlog(self, store):
        """Regression: in a backlog every queued event past its lease was sent again each lease, multiplying
        the backlog; now only started (processing) or retrying (failed) events are re-sent meanwhile."""
        queued, started = stored(store, 2, now=1000.0)
        store.set_status(started, "processing", now=1000.0)
        later = 1000.0 + store.settings.outbox_lease_s + 1
        sent = []
        assert reconciler.reconcile(store, sent.append, backlog=lambda: 40, now=later) == 1
        assert sent == [started]
        # The queues drained and the queued event is still not started: its message was lost, send it.
        much_later = later + store.settings.outbox_lease_s + 1
        assert reconciler.reconcile(store, sent.append, backlog=lambda: 0, now=much_later) == 2
        assert queued in sent
