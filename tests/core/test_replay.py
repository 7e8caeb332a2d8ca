"""Replay: reset an event's failed (or all) actions and hand it over again, on the replay queue."""

import json

import pytest
import redis

import cli
from core import examples
from core.queue import REPLAY_QUEUE
from core.replay import ReplayFilter, replay_many, replay_one
from core.states import ActionState, ActionStatus
from ingest.dedup import dedup_key
from tests.fakes import RecordingQueue
from workers import pipeline


@pytest.fixture
def queue():
    return RecordingQueue()


@pytest.fixture
def runtime(settings, store):
    """The pipeline with no actions: a valid event ends `ignored`."""
    return pipeline.Runtime(settings=settings, store=store, actions={})


def deliver(store, name="voucher.updated", *, now=None):
    raw = json.dumps(examples.example_envelope(name)).encode()
    event_id, _ = store.accept(raw, dedup_key=dedup_key(raw), headers={}, secret="s", now=now)
    return event_id


def dead_event(store, *, now=None, name="voucher.updated"):
    event_id = deliver(store, name, now=now)
    store.put_action(event_id, "dead_one", ActionState(ActionStatus.DEAD, attempts=20, history=({"at": 1},)))
    store.put_action(event_id, "done_one", ActionState(ActionStatus.SUCCEEDED, attempts=1))
    store.set_status(event_id, "dead", outbox=False, event_type=name, reason="smtp_unreachable")
    return event_id


class TestReplayOne:
    def test_resets_failed_actions_and_enqueues_on_the_replay_queue(self, store, queue):
        event_id = dead_event(store)
        assert replay_one(store, queue, event_id)
        assert queue.sent == [(event_id, REPLAY_QUEUE)]
        actions = store.actions(event_id)
        assert actions["dead_one"].status == "pending"
        assert actions["dead_one"].attempts == 0
        assert actions["dead_one"].replays == 1
        assert actions["dead_one"].history == ({"at": 1},)  # the past attempts stay visible
        assert actions["done_one"] == ActionState(ActionStatus.SUCCEEDED, attempts=1)
        doc = store.document(event_id)
        assert (doc["status"], doc["reason"]) == ("queued", "replay")
        assert store.r.hget(store.key("ev", event_id), "replays") == b"1"

    def test_replayed_event_no_longer_expires(self, store, queue):
        """A dead event has a retention expiry; once replayed it is unfinished work again and is kept."""
        event_id = dead_event(store)
        assert store.r.ttl(store.key("ev", event_id)) > 0
        replay_one(store, queue, event_id)
        for kind in ("ev", "raw", "act"):
            assert store.r.ttl(store.key(kind, event_id)) == -1

    def test_all_actions(self, store, queue):
        event_id = dead_event(store)
        replay_one(store, queue, event_id, all_actions=True)
        assert {s.status for s in store.actions(event_id).values()} == {"pending"}

    def test_is_in_the_outbox_even_if_the_send_fails(self, store):
        """A broker hiccup during a replay delays it (the reconciler sends it), never drops it."""

        class DownQueue:
            def process_event(self, event_id, *, queue="events"):
                raise ConnectionError("broker down")

        event_id = dead_event(store)
        assert replay_one(store, DownQueue(), event_id)
        due = store.claim_due(now=store.r.zscore(f"{store.p}:outbox", event_id) + 0.001)
        assert due == [event_id]

    def test_unknown_event(self, store, queue):
        assert not replay_one(store, queue, "evt_nope")
        assert queue.sent == []

    def test_event_dead_from_too_many_starts_runs_again(self, runtime, store, queue):
        """Regression: replay kept the start count, so an event that went dead with `too_many_starts`
        (its worker died every time) went straight back to dead on replay and never ran again."""
        event_id = deliver(store)
        store.r.hset(store.key("ev", event_id), "unfinished_starts", pipeline.MAX_EVENT_STARTS)
        assert pipeline.process_event(event_id, runtime) == "dead"
        replay_one(store, queue, event_id)
        assert pipeline.process_event(event_id, runtime) == "ignored"
        assert store.document(event_id)["attempts"] == 1  # the dead start was not counted; this one is


class TestReplayMany:
    @pytest.fixture
    def events(self, store):
        return [dead_event(store, now=1_700_000_000 + i) for i in range(3)]

    def test_oldest_first_with_progress(self, store, queue, events):
        seen = []
        assert replay_many(store, queue, ReplayFilter(status="dead"), progress=seen.append) == 3
        assert [e for e, _ in queue.sent] == events
        assert {q for _, q in queue.sent} == {REPLAY_QUEUE}
        assert seen == [1, 2, 3]

    def test_dry_run_changes_nothing(self, store, queue, events):
        assert replay_many(store, queue, ReplayFilter(status="dead"), dry_run=True) == 3
        assert queue.sent == []
        assert store.counts()["dead"] == 3

    def test_time_window(self, store, queue, events):
        flt = ReplayFilter(since=1_700_000_001, until=1_700_000_001)
        assert replay_many(store, queue, flt) == 1
        assert queue.sent == [(events[1], REPLAY_QUEUE)]

    def test_expired_events_are_skipped_and_pruned(self, store, queue, events):
        """An index entry whose event expired is not counted, and is removed from the index."""
        store.r.delete(store.key("ev", events[0]))
        assert replay_many(store, queue, ReplayFilter(status="dead"), dry_run=True) == 2
        assert store.r.zscore(f"{store.p}:st:dead", events[0]) is None


class TestCommand:
    """`voucherify-ingest replay` against the real store and the real broker (a Redis list per queue)."""

    @pytest.fixture
    def env(self, monkeypatch, settings):
        monkeypatch.setenv("REDIS_URL", settings.redis_url)
        monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
        monkeypatch.setenv("KEY_PREFIX", settings.key_prefix)

    def queued(self, settings, name):
        return redis.Redis.from_url(settings.redis_url).llen(name)

    def test_one(self, env, settings, store, capsys):
        event_id = dead_event(store)
        assert cli.main(["replay", event_id]) == 0
        assert capsys.readouterr().out.strip() == f"replayed {event_id}"
        assert store.document(event_id)["status"] == "queued"
        assert self.queued(settings, REPLAY_QUEUE) == 1
        assert self.queued(settings, "events") == 0

    def test_bulk_dry_run_then_for_real(self, env, settings, store, capsys):
        for i in range(3):
            dead_event(store, now=1_700_000_000 + i)
        assert cli.main(["replay", "--status", "dead", "--dry-run"]) == 0
        assert capsys.readouterr().out.strip() == "would replay 3 event(s)"
        assert self.queued(settings, REPLAY_QUEUE) == 0
        assert cli.main(["replay", "--status", "dead", "--since", "2023-11-14T22:13:21Z"]) == 0
        out = capsys.readouterr()
        assert out.out.strip() == "replayed 2 event(s)"
        assert "2/2" in out.err  # the progress bar
        assert self.queued(settings, REPLAY_QUEUE) == 2

    def test_unknown_event_fails(self, env, store, capsys):
        assert cli.main(["replay", "evt_nope"]) == 1
        assert "no event evt_nope" in capsys.readouterr().err
