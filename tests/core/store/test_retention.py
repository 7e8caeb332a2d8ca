"""Retention: terminal events expire on schedule, and nothing that indexes them keeps growing."""

import time

import pytest

from core.states import ActionState, ActionStatus
from tests.support import wait_for


def accept(store, n=0, now=None):
    event_id, _ = store.accept(
        b"{}", dedup_key=f"k-{n}-{time.monotonic_ns()}", headers={}, secret="secret:0", now=now
    )
    return event_id


def index_sizes(store):
    p = store.p
    keys = [f"{p}:all", f"{p}:outbox", *(f"{p}:st:{s}" for s in ("queued", "processed", "ignored", "dead"))]
    keys += [k.decode() for k in store.r.scan_iter(f"{p}:ty:*")]
    return {k: store.r.zcard(k) for k in keys if store.r.zcard(k)}


@pytest.fixture
def short(settings, store):
    """A store whose processed/ignored events expire after 1 s and invalid/dead ones after 2 s."""
    from core.store import EventStore

    return EventStore(store.r, settings.with_(retention_processed_s=1, retention_failed_s=2))


class TestExpiry:
    def test_terminal_events_expire_on_schedule(self, short):
        """processed after the short retention, dead after the longer one; document, body and actions go."""
        done, dead = accept(short, 1), accept(short, 2)
        short.put_action(done, "notify_customer", ActionState(ActionStatus.SUCCEEDED))
        short.set_status(done, "processed", event_type="publication.succeeded", outbox=False)
        short.set_status(dead, "dead", event_type="voucher.updated", outbox=False)
        assert 0 < short.r.ttl(short.key("ev", done)) <= 1
        assert 1 < short.r.ttl(short.key("raw", dead)) <= 2
        assert 0 < short.r.ttl(short.key("act", done)) <= 1
        wait_for(lambda: short.document(done) is None, timeout=5, what="the processed event to expire")
        assert short.document(dead) is not None
        wait_for(lambda: short.document(dead) is None, timeout=5, what="the dead event to expire")
        for kind in ("ev", "raw", "act"):
            assert not short.r.exists(short.key(kind, done))

    def test_unfinished_events_never_expire(self, short):
        """queued, processing and failed events stay until they settle, however long that takes."""
        event_id = accept(short)
        short.set_status(event_id, "failed")
        assert short.r.ttl(short.key("ev", event_id)) == -1
        assert short.r.ttl(short.key("raw", event_id)) == -1

    def test_replay_stops_the_clock(self, short):
        """A replayed event is unfinished again: it must not expire mid-replay."""
        event_id = accept(short)
        short.set_status(event_id, "dead", event_type="voucher.updated")
        assert short.reset_for_replay(event_id)
        assert short.r.ttl(short.key("ev", event_id)) == -1

    def test_dedup_claim_lasts_the_dedup_window(self, settings, store):
        accept(store)
        (claim,) = store.r.keys(f"{store.p}:dd:*")
        assert settings.dedup_window_s - 5 <= store.r.ttl(claim) <= settings.dedup_window_s

    def test_side_effect_reservations_expire(self, store):
        """Pending and done reservations both carry a TTL, so {p}:once:* cannot grow without bound."""
        assert store.reserve("notify:pub_1", "holder-1", 30) == "acquired"
        assert 0 < store.r.ttl(store.key("once", "notify:pub_1")) <= 30
        store.complete("notify:pub_1", "holder-1", 3600)
        assert 3500 < store.r.ttl(store.key("once", "notify:pub_1")) <= 3600


class TestIndexPruning:
    def settle_and_expire(self, store, n):
        ids = []
        for i in range(n):
            event_id = accept(store, i)
            store.set_status(event_id, "processed", event_type=f"type.{i % 3}", outbox=False)
            ids.append(event_id)
        for event_id in ids:  # expire them now, as the TTL eventually would
            store.r.delete(store.key("ev", event_id), store.key("raw", event_id))
        return ids

    def test_sweep_drops_expired_ids_from_every_index(self, short):
        """Expired ids leave the listing, the status and the type indexes; live ones stay."""
        self.settle_and_expire(short, 7)
        alive = accept(short, 99)
        dropped = short.prune_expired(now=time.time() + 10)
        assert dropped == 7
        assert index_sizes(short) == {
            f"{short.p}:all": 1,
            f"{short.p}:outbox": 1,
            f"{short.p}:st:queued": 1,
        }
        assert short.list_events() == [short.document(alive)]
        assert short.r.smembers(f"{short.p}:types") == set()

    def test_nothing_recent_is_looked_at(self, short):
        """Events received within the shortest retention cannot have expired: the sweep skips them."""
        self.settle_and_expire(short, 3)
        assert short.prune_expired() == 0
        assert short.prune_expired(now=time.time() + 10) == 3

    def test_each_call_is_bounded_and_resumes_where_it_stopped(self, short):
        """A budget of 4 drops 4 per call; the next call continues, then the cursor wraps around."""
        self.settle_and_expire(short, 10)
        later = time.time() + 10
        assert short.prune_expired(now=later, batch=2, budget=4) == 4
        assert short.prune_expired(now=later, batch=2, budget=4) == 4
        assert short.prune_expired(now=later, batch=2, budget=4) == 2
        assert short.r.get(f"{short.p}:prune:cursor") == b"-inf"
        assert index_sizes(short) == {}

    def test_live_old_events_do_not_stall_the_sweep(self, short):
        """Old unfinished events at the front are stepped over, so expired ones behind them still go."""
        t_old = time.time() - 100
        for i in range(5):
            accept(short, i, now=t_old + i)  # old, still queued: alive forever
        self.settle_and_expire(short, 3)
        later = time.time() + 10
        dropped = sum(short.prune_expired(now=later, batch=2, budget=2) for _ in range(5))
        assert dropped == 3
        assert short.r.zcard(f"{short.p}:all") == 5

    def test_listing_by_type_prunes_the_type_index(self, short):
        """Regression: the lazy prune of a listing left expired ids in {p}:ty:* forever."""
        self.settle_and_expire(short, 3)
        assert short.list_events(event_type="type.0") == []
        assert short.list_events() == []
        assert index_sizes(short) == {}
