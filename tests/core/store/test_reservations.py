"""Reservations: a side effect happens at most once per business key, across attempts and workers."""

from __future__ import annotations


class TestReserve:
    def test_one_holder_at_a_time(self, store):
        """The first attempt acquires; another is told `busy`; the holder may take it again."""
        assert store.reserve("k", "a1", 30) == "acquired"
        assert store.reserve("k", "a2", 30) == "busy"
        assert store.reserve("k", "a1", 30) == "acquired"

    def test_done_is_remembered(self, store):
        """Once completed, every attempt learns it already happened, for the time asked."""
        store.reserve("k", "a1", 30)
        store.complete("k", "a1", 3600)
        assert store.reserve("k", "a2", 30) == "done"
        assert 3500 < store.r.ttl(store.key("once", "k")) <= 3600

    def test_release_lets_a_retry_take_it(self, store):
        """A failed side effect releases the key; someone else's release does nothing."""
        store.reserve("k", "a1", 30)
        store.release("k", "a2")
        assert store.reserve("k", "a2", 30) == "busy"
        store.release("k", "a1")
        assert store.reserve("k", "a2", 30) == "acquired"

    def test_reservation_lapses(self, store):
        """A holder that died blocks others only as long as its reservation; reserved_for says how long."""
        store.reserve("k", "a1", 30)
        assert 29 < store.reserved_for("k") <= 30
        store.r.delete(store.key("once", "k"))
        assert store.reserved_for("k") is None
        assert store.reserve("k", "a2", 30) == "acquired"


class TestReserveMany:
    def test_each_claim_gets_what_reserve_would_answer(self, store):
        """In one round trip: a free key is acquired, a done one is done, another holder's is busy, our
        own is acquired again (and extended)."""
        store.reserve("done", "a0", 30)
        store.complete("done", "a0", 3600)
        store.reserve("theirs", "b1", 30)
        store.reserve("ours", "a3", 5)
        claims = [("free", "a1"), ("done", "a2"), ("theirs", "a3"), ("ours", "a3")]
        assert store.reserve_many(claims, 30) == ["acquired", "done", "busy", "acquired"]
        assert store.r.get(store.key("once", "free")) == b"pending:a1"
        assert 29 < store.reserved_for("ours") <= 30
        assert store.reserve_many([], 30) == []

    def test_a_key_claimed_twice_goes_to_the_first(self, store):
        assert store.reserve_many([("k", "a1"), ("k", "a2")], 30) == ["acquired", "busy"]
