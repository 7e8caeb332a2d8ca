"""Accepting deliveries: one atomic write of body, document, dedup claim, indexes and outbox."""

from __future__ import annotations

import json

from core.states import Status


class TestAccept:
    def test_stores_body_document_indexes_and_outbox(self, store):
        """A new delivery is stored as received, `queued`, listed, and due in the outbox a lease later."""
        event_id, created = store.accept(
            b'{"a": 1}', dedup_key="ev:src:1", headers={"user-agent": "x"}, secret="secret:0", now=100.0
        )
        assert created
        assert store.raw(event_id) == b'{"a": 1}'
        doc = store.document(event_id)
        assert doc["status"] == Status.QUEUED
        assert (doc["dedup_key"], doc["size"], doc["duplicates"]) == ("ev:src:1", 8, 0)
        assert store.r.zscore(f"{store.p}:all", event_id) == 100.0
        assert store.r.zscore(f"{store.p}:st:queued", event_id) == 100.0
        assert store.r.zscore(f"{store.p}:outbox", event_id) == 100.0 + store.settings.outbox_lease_s
        assert json.loads(store.r.hget(store.key("ev", event_id), "headers")) == {"user-agent": "x"}

    def test_the_whole_document_as_written(self, store):
        """Every field of a new event's document, the ones the script fills in itself included."""
        body = '{"é": 1}'.encode()
        event_id, _ = store.accept(
            body, dedup_key="ev:src:2", headers={"x": "y"}, secret="secret:1", source="shop", now=100.5
        )
        fields = {k.decode(): v.decode() for k, v in store.r.hgetall(store.key("ev", event_id)).items()}
        assert fields == {
            "id": event_id,
            "status": Status.QUEUED.value,
            "event_type": "",
            "received_at": "100.5",
            "updated_at": "100.5",
            "dedup_key": "ev:src:2",
            "attempts": "0",
            "duplicates": "0",
            "source": "shop",
            "secret": "secret:1",
            "headers": '{"x": "y"}',
            "size": str(len(body)),  # bytes, not characters
        }

    def test_duplicate_is_counted_on_the_original(self, store):
        """The same dedup key again answers the original's id, stores nothing new, and counts it."""
        first, _ = store.accept(b"{}", dedup_key="k", headers={}, secret="s")
        again, created = store.accept(b"{ }", dedup_key="k", headers={}, secret="s")
        assert (again, created) == (first, False)
        assert store.document(first)["duplicates"] == 1
        assert store.r.zcard(f"{store.p}:all") == 1

    def test_dedup_claim_expires_with_the_window(self, store):
        """The claim lives for the dedup window, not forever."""
        store.accept(b"{}", dedup_key="k", headers={}, secret="s")
        ttl = store.r.ttl(store.key("dd", "k"))
        assert 0 < ttl <= store.settings.dedup_window_s

    def test_pushes_the_broker_message_in_the_same_write(self, store):
        """A message to enqueue is on the queue's list once the write returns; never for a duplicate."""
        event_id, _ = store.accept(
            b"{}", dedup_key="k", headers={}, secret="s", enqueue=lambda i: ("events", f"msg:{i}".encode())
        )
        store.accept(b"{}", dedup_key="k", headers={}, secret="s", enqueue=lambda i: ("events", b"dup"))
        assert store.r.lrange("events", 0, -1) == [f"msg:{event_id}".encode()]

    def test_ids_are_time_ordered(self, store):
        """Event ids sort by the time they were received."""
        a, _ = store.accept(b"{}", dedup_key="a", headers={}, secret="s", now=1_000.0)
        b, _ = store.accept(b"{}", dedup_key="b", headers={}, secret="s", now=2_000.0)
        assert a < b
