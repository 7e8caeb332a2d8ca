"""Reservations: a side effect happens at most once per business key, across attempts and workers."""

from __future__ import annotations

import pytest
import redis
from redis.connection import Connection

from core.store.reservations import DoneMarks


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


class TestDoneMarks:
    def test_marks_are_written_and_confirmed(self, store):
        """Each mark is in the store once the next is written, the last once closed; the connection goes
        back to the pool."""
        marks = DoneMarks(store)
        for key in ("a", "b", "c"):
            store.reserve(key, f"h-{key}", 30)
            marks.write(key, f"h-{key}", 3600)
        marks.close()
        assert [store.reserve(k, "other", 30) for k in "abc"] == ["done"] * 3
        assert 3500 < store.r.ttl(store.key("once", "a")) <= 3600
        assert store.r.get(store.key("once", "c")) == b"done:h-c"
        assert marks._conn is None

    @pytest.mark.parametrize("fails", ["send_command", "read_response"])
    def test_a_mark_that_fails_is_written_again_the_patient_way(self, store, monkeypatch, fails):
        """A mark that could not be sent, or whose reply did not come, is written with complete(); the
        broken connection is dropped, and later marks use a fresh one."""
        real = getattr(Connection, fails)
        armed = []

        def once_broken(self, *args, **kwargs):
            if armed:
                armed.clear()
                raise redis.ConnectionError("connection reset")
            return real(self, *args, **kwargs)

        monkeypatch.setattr(Connection, fails, once_broken)
        completed = []
        real_complete = store.complete

        def complete(*args, **kwargs):
            completed.append(args[0])
            real_complete(*args, **kwargs)

        monkeypatch.setattr(store, "complete", complete)
        marks = DoneMarks(store)
        if fails == "send_command":
            marks._conn = store.r.connection_pool.get_connection()  # connected: the next send is the SET
            armed.append(True)
        marks.write("a", "h", 60)
        if fails == "read_response":
            armed.append(True)  # the reply of `a` is read as `b` goes out
        marks.write("b", "h", 60)
        marks.close()
        assert completed == ["a"]
        assert [store.r.get(store.key("once", k)) for k in "ab"] == [b"done:h", b"done:h"]

    def test_a_mark_the_store_never_takes_raises(self, store, monkeypatch):
        """complete() gave up too (the store stays away): the caller hears of it."""

        def refuse(self, *args, **kwargs):
            raise redis.ConnectionError("store away")

        def away(*args, **kwargs):
            raise redis.ConnectionError("store away")

        monkeypatch.setattr(Connection, "send_command", refuse)
        monkeypatch.setattr(store, "complete", away)
        with pytest.raises(redis.ConnectionError):
            DoneMarks(store).write("a", "h", 60)
