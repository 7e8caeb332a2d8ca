"""Queries: documents, listings and counts, as the admin API, the CLI and /metrics read them."""

from __future__ import annotations

from core.states import ActionState, ActionStatus, Status


def accept(store, n, now):
    event_id, _ = store.accept(b"{}", dedup_key=f"k{n}", headers={}, secret="s", now=now)
    return event_id


class TestDocument:
    def test_shows_actions_with_iso_times(self, store):
        """Times in a document are ISO-8601 UTC with milliseconds, like Voucherify's."""
        event_id = accept(store, 1, 1_700_000_000.0)
        history = ({"at": 1_700_000_001.5, "outcome": "failed"},)
        store.put_action(
            event_id,
            "a",
            ActionState(
                ActionStatus.FAILED,
                first_attempt_at=1_700_000_001.5,
                next_attempt_at=1_700_000_060.0,
                history=history,
            ),
        )
        doc = store.document(event_id)
        assert doc["received_at"] == "2023-11-14T22:13:20.000Z"
        assert doc["actions"]["a"]["next_attempt_at"] == "2023-11-14T22:14:20.000Z"
        assert doc["actions"]["a"]["first_attempt_at"] == "2023-11-14T22:13:21.500Z"  # was epoch seconds
        assert doc["actions"]["a"]["history"] == [{"at": "2023-11-14T22:13:21.500Z", "outcome": "failed"}]

    def test_unknown_event(self, store):
        assert store.document("evt_nope") is None


class TestListing:
    def test_newest_first_with_filters(self, store):
        """Listings come newest first, filtered by status, type and time."""
        ids = [accept(store, i, 1_000.0 + i) for i in range(4)]
        store.set_status(ids[1], Status.DEAD, outbox=False, event_type="voucher.updated")
        store.set_status(ids[2], Status.PROCESSED, outbox=False, event_type="voucher.updated")
        assert [e["id"] for e in store.list_events()] == ids[::-1]
        assert [e["id"] for e in store.list_events(status=Status.DEAD)] == [ids[1]]
        assert [e["id"] for e in store.list_events(event_type="voucher.updated")] == [ids[2], ids[1]]
        assert [e["id"] for e in store.list_events(since=1_001.0, until=1_002.0)] == [ids[2], ids[1]]
        assert [e["id"] for e in store.list_events(limit=1)] == [ids[3]]

    def test_expired_events_are_skipped_and_pruned(self, store):
        """An index entry whose event expired is not listed, and is dropped from the index on the way."""
        gone, kept = accept(store, 1, 1.0), accept(store, 2, 2.0)
        store.r.delete(store.key("ev", gone))
        assert list(store.iter_ids()) == [kept]
        assert store.r.zscore(f"{store.p}:all", gone) is None


class TestCounts:
    def test_counts_outbox_and_oldest_unfinished(self, store):
        """Counts by status, the outbox size and the oldest unfinished event's receipt time."""
        a, b = accept(store, 1, 10.0), accept(store, 2, 20.0)
        store.set_status(a, Status.PROCESSED, outbox=False)
        counts = store.counts()
        assert (counts["processed"], counts["queued"], sum(counts.values())) == (1, 1, 2)
        assert store.outbox_size() == 1
        assert store.oldest_unfinished() == 20.0
        store.set_status(b, Status.IGNORED, outbox=False)
        assert store.oldest_unfinished() is None
