import json

import pytest

from core.queue import LIVE_QUEUE, REPLAY_QUEUE
from core.store import Start
from ingest.dedup import dedup_key
from workers import reconciler

EMPTY = {LIVE_QUEUE: 0, REPLAY_QUEUE: 0}
BUSY = {LIVE_QUEUE: 40, REPLAY_QUEUE: 40}


def stored(store, n, *, now):
    ids = []
    for i in range(n):
        raw = json.dumps({"event": {"id": f"ev{i}-{now}", "type": "voucher.updated"}, "data": {}}).encode()
        ids.append(store.accept(raw, dedup_key=dedup_key(raw), headers={}, secret="s", now=now)[0])
    return ids


def run(store, *, now, lengths=EMPTY):
    sent = []
    reconciler.reconcile(store, sent.append, lengths=lambda: lengths, now=now)
    return sent


@pytest.fixture
def lease(store):
    return store.settings.outbox_lease_s


class TestReconcile:
    def test_hands_over_events_past_their_lease(self, store, lease):
        """Stored but never picked up (the enqueue was lost, the queues are empty): handed over once its
        lease is past, to the live queue, each as a message id recorded on the event."""
        ids = stored(store, 3, now=1000.0)
        sent = run(store, now=1000.0 + lease + 1)
        assert sorted(h.event_id for h in sent) == sorted(ids)
        assert {h.queue for h in sent} == {LIVE_QUEUE}
        for h in sent:
            assert store.r.hget(store.key("ev", h.event_id), "handoff_id").decode() == h.message_id

    def test_nothing_before_the_lease(self, store):
        stored(store, 2, now=1000.0)
        assert run(store, now=1001.0) == []

    def test_claims_once_per_lease(self, store, lease):
        """A second pass right after the first does not send the same events again."""
        stored(store, 2, now=1000.0)
        later = 1000.0 + lease + 1
        assert len(run(store, now=later)) == 2
        assert run(store, now=later + 1) == []

    def test_one_outstanding_message_however_long_the_backlog(self, store, lease):
        """Regression: events a worker started (`processing`) or that wait for a retry (`failed`) were
        handed over again every lease while their last message still waited in a backlog, which multiplied
        the backlog by itself. Now a hand-off nobody started is waited for while its queue is busy."""
        retrying, started = stored(store, 2, now=1000.0)
        store.set_status(retrying, "failed", outbox=1001.0, now=1000.0)
        store.set_status(started, "processing", outbox=1000.0 + lease, now=1000.0)
        first = run(store, now=1000.0 + lease + 1, lengths=BUSY)
        assert sorted(h.event_id for h in first) == sorted([retrying, started])
        assert {h.queue for h in first} == {REPLAY_QUEUE}
        for t in range(1, 20):  # ten leases of a busy queue that never reaches them
            assert run(store, now=1000.0 + lease + 1 + t * lease / 2, lengths=BUSY) == []
        assert int(store.r.hget(store.key("ev", retrying), "handoffs")) == 1

    def test_a_queued_event_waits_for_its_message_while_the_queue_is_busy(self, store, lease):
        """An event stored with its message, past its lease in a backlog: the message is still coming."""
        stored(store, 1, now=1000.0)
        assert run(store, now=1000.0 + 3 * lease, lengths=BUSY) == []

    def test_a_lost_message_is_resent_once_the_queue_moved_past_it(self, store, runtime, lease):
        """Regression: a `queued` event whose message was lost waited until the queues were empty, which
        under constant load is never. Now it is handed over as soon as a worker starts a message sent on
        its queue a lease after it: queues are first in, first out, so its own would have come first."""
        (lost,) = stored(store, 1, now=1000.0)
        (later,) = stored(store, 1, now=1000.0 + lease)
        assert run(store, now=1000.0 + lease + 1, lengths=BUSY) == []
        store.begin(later, now=1000.0 + lease + 2, max_starts=10, message_id="intake-1", queue=LIVE_QUEUE)
        sent = run(store, now=1000.0 + 2 * lease, lengths=BUSY)
        assert [(h.event_id, h.queue) for h in sent] == [(lost, LIVE_QUEUE)]

    def test_a_lost_hand_off_is_resent_once_the_queue_moved_past_it(self, store, lease):
        """The same for the reconciler's own message, on the replay queue; never before."""
        a, b = stored(store, 2, now=1000.0)
        store.set_status(a, "failed", outbox=1001.0, now=1000.0)
        (first,) = run(store, now=1002.0, lengths=BUSY)
        store.set_status(b, "failed", outbox=1002.0 + lease, now=1000.0)
        (second,) = run(store, now=1002.0 + lease, lengths=BUSY)
        assert second.event_id == b
        assert run(store, now=1002.0 + 1.5 * lease, lengths=BUSY) == []
        # b's message (sent a lease after a's) is started: a's should have been, it is lost.
        store.begin(b, now=1003.0 + lease, max_starts=10, message_id=second.message_id, queue=REPLAY_QUEUE)
        (again,) = run(store, now=1002.0 + 2 * lease, lengths=BUSY)
        assert again.event_id == a
        assert again.message_id != first.message_id

    def test_the_replaced_message_does_nothing_when_it_arrives(self, store, runtime, lease):
        """Only the event's outstanding hand-off runs it; an older one (replaced) is dropped unrun."""
        from workers import pipeline

        (event_id,) = stored(store, 1, now=1000.0)
        (first,) = run(store, now=1000.0 + lease + 1)
        store.r.delete(LIVE_QUEUE)
        (second,) = run(store, now=1000.0 + 2 * lease + 2)
        assert first.message_id != second.message_id
        verdict = store.begin(event_id, now=1.0, max_starts=10, message_id=first.message_id, queue=LIVE_QUEUE)
        assert verdict[2] == Start.SUPERSEDED
        assert pipeline.process_event(event_id, runtime, message_id=first.message_id) == "superseded"
        assert store.r.hget(store.key("ev", event_id), "status") == b"queued"
        assert pipeline.process_event(event_id, runtime, message_id=second.message_id) != "superseded"

    def test_finished_events_leave_the_outbox(self, store, lease):
        (event_id,) = stored(store, 1, now=1000.0)
        store.r.hset(store.key("ev", event_id), "status", "processed")
        assert run(store, now=1000.0 + lease + 1) == []
        assert store.outbox_size() == 0

    def test_a_hand_off_that_could_not_be_sent_is_withdrawn(self, store, lease):
        """The broker refused the send: the event is due again at once, not waiting for a message that
        does not exist."""
        (event_id,) = stored(store, 1, now=1000.0)

        def refuse(handoff):
            raise ConnectionError("broker down")

        with pytest.raises(ConnectionError):
            reconciler.reconcile(store, refuse, lengths=lambda: EMPTY, now=1000.0 + lease + 1)
        assert store.r.hget(store.key("ev", event_id), "handoff_id") is None
        assert [h.event_id for h in run(store, now=1000.0 + lease + 2)] == [event_id]

    def test_cost_per_run_is_bounded(self, store, lease):
        """A run looks at no more than about its budget of due entries; the next run takes the rest."""
        stored(store, 30, now=1000.0)
        sent = []
        reconciler.reconcile(
            store, sent.append, lengths=lambda: EMPTY, now=1000.0 + lease + 1, batch=10, budget=20
        )
        assert len(sent) == 20
        assert len(run(store, now=1000.0 + lease + 2)) == 10


class TestLogLevel:
    def test_idle_pass_logs_at_debug_and_a_hand_over_at_info(self, store, lease, caplog):
        """A pass that sends nothing (events waiting on a busy queue) is DEBUG: `run` in a terminal would
        otherwise print it every few seconds. A pass that hands something over stays INFO."""
        caplog.set_level("DEBUG", logger="workers.reconciler")
        stored(store, 1, now=1000.0)
        assert len(run(store, now=1000.0 + lease + 1)) == 1
        assert [r.levelname for r in caplog.records if r.getMessage() == "reconciler pass"] == ["INFO"]
        caplog.clear()
        stored(store, 1, now=5000.0)
        assert run(store, now=5000.0 + 3 * lease, lengths=BUSY) == []
        assert [r.levelname for r in caplog.records if r.getMessage() == "reconciler pass"] == ["DEBUG"]
