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
