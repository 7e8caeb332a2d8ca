"""An event's life in the workers: begin, settle, the outbox, and a reset for replay."""

from __future__ import annotations

import pytest

from core.states import ActionState, ActionStatus, Status
from core.store import Done, Settle, Start


@pytest.fixture
def event_id(store):
    event_id, _ = store.accept(b"{}", dedup_key="k", headers={}, secret="s", now=100.0)
    return event_id


class TestBegin:
    def test_marks_processing_and_pushes_the_lease(self, store, event_id):
        """A start moves the event to `processing`, counts it, and moves its outbox entry a lease on."""
        ev, states, started = store.begin(event_id, now=200.0, max_starts=10)
        assert started
        assert states == {}
        assert (ev.status, ev.raw, ev.attempts) == (Status.QUEUED, b"{}", 0)
        doc = store.document(event_id)
        assert (doc["status"], doc["attempts"]) == (Status.PROCESSING, 1)
        assert store.r.zscore(f"{store.p}:outbox", event_id) == 200.0 + store.settings.outbox_lease_s
        assert store.r.zscore(f"{store.p}:st:processing", event_id) == 100.0

    def test_terminal_event_is_not_started(self, store, event_id):
        """A settled event is read but left as it is."""
        store.set_status(event_id, Status.PROCESSED, outbox=False)
        ev, _, started = store.begin(event_id, now=200.0, max_starts=10)
        assert (ev.status, started) == (Status.PROCESSED, False)
        assert store.document(event_id)["attempts"] == 0

    def test_stops_after_too_many_unfinished_starts(self, store, event_id):
        """Starts that never finished are counted; at the limit the event is no longer started."""
        for _ in range(3):
            assert store.begin(event_id, now=200.0, max_starts=3)[2]
        ev, _, started = store.begin(event_id, now=200.0, max_starts=3)
        assert (started, ev.unfinished_starts) == (False, 3)

    def test_unknown_event(self, store):
        assert store.begin("evt_nope", now=1.0, max_starts=10) is None


class TestBeginMany:
    def test_one_answer_per_start_in_order(self, store, event_id):
        """A batch begins in one call: each event as begin() would, unknown ones None, in the given order."""
        other, _ = store.accept(b'{"a":1}', dedup_key="k2", headers={}, secret="s", now=101.0)
        store.set_status(other, Status.PROCESSED, outbox=False)
        got = store.begin_many(
            [(event_id, "m1", "events"), ("evt_nope", "m2", "events"), (other, "m3", "events")],
            now=200.0,
            max_starts=10,
        )
        assert got[1] is None
        assert got[0] is not None
        assert got[2] is not None
        (ev, _, started), (done, _, refused) = got[0], got[2]
        assert (ev.id, ev.raw, started) == (event_id, b"{}", Start.STARTED)
        assert (done.id, done.raw, refused) == (other, b'{"a":1}', Start.REFUSED)
        assert store.document(event_id)["status"] == Status.PROCESSING
        assert store.document(other)["status"] == Status.PROCESSED

    def test_a_reconciler_message_that_is_not_the_hand_off_is_superseded(self, store, event_id):
        """Each start is judged by its own message id, as begin() judges one."""
        (_, _, verdict), (_, _, again) = store.begin_many(  # type: ignore[misc]
            [(event_id, "rc-1-abc", "replay"), (event_id, "m1", "events")], now=200.0, max_starts=10
        )
        assert (verdict, again) == (Start.SUPERSEDED, Start.STARTED)

    def test_one_script_call(self, store, event_id):
        """However many events: one EVALSHA."""
        before = _calls(store, "evalsha")
        store.begin_many([(event_id, "", ""), ("evt_a", "", ""), ("evt_b", "", "")], now=2.0, max_starts=10)
        assert _calls(store, "evalsha") - before == 1

    def test_empty_batch(self, store):
        assert store.begin_many([], now=1.0, max_starts=10) == []


class TestSettleMany:
    def test_each_event_settles_as_set_status_would(self, store, event_id):
        """Statuses, actions, side effects, fields and the outbox, per event, with each one's old status."""
        other, _ = store.accept(b'{"a":1}', dedup_key="k2", headers={}, secret="s", now=101.0)
        state = ActionState(ActionStatus.SUCCEEDED, attempts=1)
        olds = store.settle_many(
            [
                Settle(
                    event_id,
                    Status.PROCESSED,
                    outbox=False,
                    actions={"notify_customer": state},
                    done=(Done("notify:pub_1", "holder", 60),),
                    fields={"event_type": "publication.succeeded", "reason": ""},
                ),
                Settle(other, Status.FAILED, outbox=500.0, fields={"reason": "busy"}),
                Settle("evt_nope", Status.PROCESSED),
            ]
        )
        assert olds == [Status.QUEUED, Status.QUEUED, None]
        assert store.actions(event_id) == {"notify_customer": state}
        assert store.r.get(f"{store.p}:once:notify:pub_1") == b"done:holder"
        doc = store.document(event_id)
        assert (doc["status"], doc["event_type"]) == (Status.PROCESSED, "publication.succeeded")
        assert store.r.zscore(f"{store.p}:outbox", event_id) is None
        assert store.document(other)["status"] == Status.FAILED
        assert store.r.zscore(f"{store.p}:outbox", other) == 500.0

    def test_one_pipeline_of_evalsha_even_after_the_server_forgot_the_script(self, store, event_id):
        """Plain EVALSHAs in one pipeline (no SCRIPT EXISTS first); a server that lost its scripts gets the
        script loaded once and the batch sent again."""
        store.settle_many([Settle(event_id, Status.PROCESSING)])
        store.r.script_flush()
        executed = []
        real = store.r.pipeline

        def pipeline_(*args, **kwargs):
            pipe = real(*args, **kwargs)
            execute = pipe.execute

            def counted(*a, **kw):
                executed.append([c[0][0] for c in pipe.command_stack])
                return execute(*a, **kw)

            pipe.execute = counted
            return pipe

        store.r.pipeline = pipeline_
        try:
            store.settle_many([Settle(event_id, Status.PROCESSING), Settle(event_id, Status.PROCESSED)])
            assert executed == [["EVALSHA", "EVALSHA"]] * 2  # NOSCRIPT; SCRIPT LOAD; again
            executed.clear()
            store.settle_many([Settle(event_id, Status.PROCESSED)])
            assert executed == [["EVALSHA"]]
        finally:
            del store.r.pipeline
        assert store.document(event_id)["status"] == Status.PROCESSED

    def test_unknown_status_is_refused_before_anything_is_written(self, store, event_id):
        with pytest.raises(ValueError, match="unknown status"):
            store.settle_many([Settle(event_id, Status.PROCESSED), Settle(event_id, "nonsense")])
        assert store.document(event_id)["status"] == Status.QUEUED

    def test_empty_batch(self, store):
        assert store.settle_many([]) == []


class TestSetStatus:
    def test_settles_actions_effects_and_status_in_one_write(self, store, event_id):
        """The actions' states, their side effects and the status land together; the outbox entry goes."""
        state = ActionState(ActionStatus.SUCCEEDED, attempts=1)
        old = store.set_status(
            event_id,
            Status.PROCESSED,
            outbox=False,
            actions={"notify_customer": state},
            done=[Done("notify:pub_1", "holder", 60)],
            event_type="publication.succeeded",
        )
        assert old == Status.QUEUED
        assert store.actions(event_id) == {"notify_customer": state}
        assert store.r.get(store.key("once", "notify:pub_1")) == b"done:holder"
        assert store.r.zscore(f"{store.p}:outbox", event_id) is None
        assert store.r.zscore(f"{store.p}:ty:publication.succeeded", event_id) == 100.0
        assert store.worker_counters().actions == {("succeeded", "notify_customer"): 1}

    def test_terminal_status_starts_the_retention_clock(self, store, event_id):
        """processed keeps for the processed retention, dead for the failed one; unfinished forever."""
        store.set_status(event_id, Status.DEAD, outbox=False)
        assert 0 < store.r.ttl(store.key("ev", event_id)) <= store.settings.retention_failed_s
        store.set_status(event_id, Status.FAILED, outbox=300.0)
        assert store.r.ttl(store.key("ev", event_id)) == -1
        assert store.r.zscore(f"{store.p}:outbox", event_id) == 300.0

    def test_unknown_status_is_refused(self, store, event_id):
        with pytest.raises(ValueError, match="unknown status"):
            store.set_status(event_id, "finished")

    def test_unknown_event(self, store):
        assert store.set_status("evt_nope", Status.PROCESSED) is None


class TestOutbox:
    def test_claim_due_pushes_claimed_entries_a_lease_on(self, store, event_id):
        """A claimed entry is not claimed again until its lease has passed."""
        due = 100.0 + store.settings.outbox_lease_s
        assert store.claim_due(due - 1) == []
        assert store.claim_due(due) == [event_id]
        assert store.claim_due(due) == []
        assert store.claim_due(due + store.settings.outbox_lease_s) == [event_id]

    def test_statuses_in_one_round_trip(self, store, event_id):
        assert store.statuses([event_id, "evt_nope"]) == ["queued", None]
        assert store.statuses([]) == []


class TestResetForReplay:
    def test_failed_and_dead_actions_run_again(self, store, event_id):
        """Dead and failed actions are pending with a fresh budget; succeeded and skipped ones stay done."""
        store.put_action(event_id, "a", ActionState(ActionStatus.DEAD, attempts=5, first_attempt_at=1.0))
        store.put_action(event_id, "b", ActionState(ActionStatus.SKIPPED, attempts=1))
        store.set_status(event_id, Status.DEAD, outbox=False)
        assert store.reset_for_replay(event_id, now=500.0)
        actions = store.actions(event_id)
        assert actions["a"] == ActionState(ActionStatus.PENDING, attempts=0, replays=1)
        assert actions["b"].status == ActionStatus.SKIPPED
        assert store.document(event_id)["status"] == Status.QUEUED
        assert store.r.zscore(f"{store.p}:outbox", event_id) == 500.0 + store.settings.outbox_lease_s

    def test_unknown_event(self, store):
        assert not store.reset_for_replay("evt_nope")


class TestSettledPerMinute:
    def test_each_settlement_counts_in_its_minute_by_status(self, store, event_id):
        """The console's chart reads these: settling counts once, in the minute it happened, by status."""
        other, _ = store.accept(b"{}", dedup_key="k2", headers={}, secret="s", now=100.0)
        store.set_status(event_id, Status.PROCESSED, outbox=False, now=7200.0 + 61)
        store.set_status(other, Status.DEAD, outbox=False, now=7200.0 + 125)
        store.set_status(other, Status.DEAD, outbox=False, now=7200.0 + 126)  # not a new settlement
        per_minute = store.settled_per_minute(since=7200.0, until=7200.0 + 3600)
        assert per_minute == {121: {"processed": 1}, 122: {"dead": 1}}

    def test_counters_are_bounded_in_time(self, store, event_id):
        """One hash per hour, kept a little over a day: the keyspace cannot grow with traffic."""
        store.set_status(event_id, Status.PROCESSED, outbox=False, now=7200.0)
        key = store.key("rate", "2")
        assert 86400 < store.r.ttl(key) <= 2 * 86400

    def test_unfinished_statuses_are_not_counted(self, store, event_id):
        store.set_status(event_id, Status.FAILED, outbox=300.0, now=7200.0)
        assert store.settled_per_minute(since=0.0, until=10_000.0) == {}


def _calls(store, command):
    return int(store.r.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))
