"""The archive database and the read path over both tiers, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import json
import time

import pytest

from core.archive import Archive, ArchivedEvent, codec, voucherify_event_id
from core.history import Events
from core.states import ActionState, ActionStatus
from schemas import event_types

HOUR = 3600.0


def event(n, *, received, status="processed", event_type="voucher.updated", source="", settled=None):
    fields = {
        "id": f"evt_{n:04d}",
        "status": status,
        "event_type": event_type,
        "type_label": event_types.label(event_type),
        "received_at": repr(received),
        "updated_at": repr(settled if settled is not None else received + 1),
        "dedup_key": f"ev:src_1:vf_{n}",
        "source": source,
        "attempts": "1",
        "size": "10",
    }
    state = json.dumps(ActionState(ActionStatus.SUCCEEDED, attempts=1).to_json())
    return ArchivedEvent(id=fields["id"], fields=fields, actions={"forward:crm": state}, raw=b'{"n": %d}' % n)


@pytest.fixture
def archive(mirror_url):
    a = Archive.from_url(mirror_url)
    yield a
    a.engine.dispose()


class TestArchive:
    def test_round_trip(self, archive):
        """What is written is read back: fields, actions' states, body, and when it was archived."""
        e = event(1, received=1000.5)
        archive.write([e], now=2000.25)
        got = archive.get(e.id)
        assert (got.fields, got.actions, got.raw, got.archived_at) == (e.fields, e.actions, e.raw, 2000.25)

    def test_archiving_twice_is_one_row_and_updates_it(self, archive):
        """Idempotent: the same event archived again (a crash before the Redis delete, or a replay since)
        is one row, with the newer state."""
        e = event(1, received=1000.0)
        archive.write([e], now=2000.0)
        changed = ArchivedEvent(e.id, {**e.fields, "status": "dead"}, e.actions, e.raw)
        archive.write([changed], now=3000.0)
        assert archive.count() == 1
        assert archive.get(e.id).status == "dead"
        assert archive.count(status="processed") == 0

    def test_bodies_are_compressed(self, archive):
        """The stored body is the codec's output (the sizes are in docs/benchmarks.md)."""
        from sqlalchemy import select

        from core.archive.tables import archived

        body = json.dumps({"data": ["same words again"] * 100}).encode()
        archive.write([ArchivedEvent("evt_big", event(1, received=1.0).fields, {}, body)])
        with archive.engine.connect() as conn:
            stored = conn.execute(select(archived.c.raw, archived.c.codec)).one()
        assert len(stored.raw) < len(body) / 10
        assert codec.decompress(stored.raw, stored.codec) == body

    def test_pages_filter_and_order(self, archive):
        """Newest first by (received time, id), filtered by status, type, `other`, source and time."""
        archive.write(
            [
                event(1, received=100.0),
                event(2, received=200.0, status="dead"),
                event(3, received=300.0, event_type="made.up", source="shop"),
                event(4, received=300.0),
            ]
        )
        ids = [e.id for e in archive.page()]
        assert ids == ["evt_0004", "evt_0003", "evt_0002", "evt_0001"]
        assert [e.id for e in archive.page(after=(300.0, "evt_0003"))] == ["evt_0002", "evt_0001"]
        assert [e.id for e in archive.page(newest_first=False, limit=2)] == ["evt_0001", "evt_0002"]
        assert [e.id for e in archive.page(status="dead")] == ["evt_0002"]
        assert [e.id for e in archive.page(type_label="other")] == ["evt_0003"]
        assert [e.id for e in archive.page(source="shop")] == ["evt_0003"]
        assert [e.id for e in archive.page(since=150.0, until=250.0)] == ["evt_0002"]
        assert archive.count(event_type="voucher.updated") == 3

    def test_finds_an_event_by_voucherify_id(self, archive):
        """The console's search by Voucherify's event.id finds archived events too."""
        archive.write([event(7, received=1.0)])
        assert archive.by_voucherify_id("vf_7") == "evt_0007"
        assert archive.by_voucherify_id("evt_0007") == "evt_0007"
        assert archive.by_voucherify_id("vf_8") is None
        assert voucherify_event_id("sha256:-:abc") is None

    def test_add_duplicates(self, archive):
        """Duplicate deliveries that came after archiving are added to the rows' documents; a pruned event
        is not there to count them on."""
        archive.write([event(1, received=1.0), event(2, received=2.0)])
        assert archive.add_duplicates({"evt_0001": 2, "evt_0002": 1, "evt_0009": 4}) == 2
        assert archive.add_duplicates({"evt_0001": 1}) == 1
        assert archive.get("evt_0001").fields["duplicates"] == "3"
        assert archive.get("evt_0002").fields["duplicates"] == "1"
        assert archive.get("evt_0001").fields["status"] == "processed"  # the rest of the document as it was
        assert archive.add_duplicates({}) == 0

    def test_retention_by_status_in_bounded_batches(self, archive):
        """processed/ignored rows go after their retention, invalid/dead after theirs, a batch at a time."""
        archive.write(
            [
                *(event(n, received=10.0, settled=10.0) for n in range(5)),
                event(10, received=10.0, settled=10.0, status="dead"),
                event(11, received=10.0, settled=500.0),
            ]
        )
        assert archive.prune(processed_before=100.0, failed_before=5.0, batch=3) == 3
        assert archive.prune(processed_before=100.0, failed_before=5.0, batch=3) == 2
        assert archive.prune(processed_before=100.0, failed_before=5.0, batch=3) == 0
        assert archive.prune(processed_before=100.0, failed_before=50.0) == 1
        assert [e.id for e in archive.page()] == ["evt_0011"]


class TestMergedReads:
    def hot(self, store, n, received):
        event_id, _ = store.accept(b"{}", dedup_key=f"k{n}", headers={}, secret="s", now=received)
        store.set_status(event_id, "processed", outbox=False, now=received + 1, event_type="voucher.updated")
        return event_id

    def test_listing_merges_both_tiers_newest_first(self, store, archive):
        """Hot and archived events in one listing, by received time; `archived_at` tells them apart."""
        now = time.time()
        a = self.hot(store, 1, now - 10)
        archive.write([event(1, received=now - 20), event(2, received=now - 5)], now=now)
        docs = Events(store, archive).list_events(limit=10)
        assert [d["id"] for d in docs] == ["evt_0002", a, "evt_0001"]
        assert [d["archived_at"] is not None for d in docs] == [True, False, True]
        assert [d["id"] for d in Events(store, archive).list_events(limit=2)] == ["evt_0002", a]

    def test_an_event_in_both_tiers_is_listed_once_from_redis(self, store, archive):
        """Between the archive write and the Redis delete (or after a restore) the hot copy wins."""
        now = time.time()
        event_id = self.hot(store, 1, now - 10)
        (due,) = store.due_for_archive(now=now + HOUR, after_s=HOUR)
        archive.write([ArchivedEvent(due.id, {**due.fields, "status": "dead"}, due.actions, due.raw)])
        events = Events(store, archive)
        docs = events.list_events(limit=10)
        assert [(d["id"], d["status"], d["archived_at"]) for d in docs] == [(event_id, "processed", None)]
        assert events.list_events(status="dead") == []
        assert events.document(event_id)["archived_at"] is None

    def test_show_reads_the_archive_when_redis_has_no_copy(self, store, archive):
        """One event, with its actions and body, from wherever it is."""
        e = event(3, received=time.time())
        archive.write([e])
        events = Events(store, archive)
        doc = events.document(e.id)
        assert doc["status"] == "processed"
        assert doc["actions"]["forward:crm"]["attempts"] == 1
        assert events.raw(e.id) == e.raw
        assert events.document("evt_nope") is None

    def test_counts_add_up_over_both_tiers(self, store, archive):
        """A dry run counts what a replay would take: hot and archived matches."""
        now = time.time()
        self.hot(store, 1, now)
        archive.write([event(1, received=now - 5), event(2, received=now - 5, status="dead")])
        events = Events(store, archive)
        assert events.count_matching() == 3
        assert events.count_matching(status="processed", event_type="voucher.updated") == 2
        assert events.count_matching(since=now - 1) == 1

    def test_counts_by_status_over_both_tiers(self, store, archive):
        """The overview's and `stats`' counts are what the listings hold: Redis's plus the archive's, with
        the archive's part apart; the archive's counts are remembered for a minute."""
        now = time.time()
        self.hot(store, 1, now)
        archive.write([event(1, received=now - 5), event(2, received=now - 5, status="dead")])
        counts, archived = Events(store, archive).counts()
        assert (counts["processed"], counts["dead"], counts["queued"]) == (2, 1, 0)
        assert archived == {"processed": 1, "dead": 1}
        archive.write([event(3, received=now - 5, status="dead")])
        assert Events(store, archive).counts()[1] == {"processed": 1, "dead": 1}
        assert archive.count_by_status(max_age_s=0) == {"processed": 1, "dead": 2}

    def test_counts_are_redis_s_while_the_archive_does_not_answer(self, store, tmp_path):
        """A database that does not answer leaves the counts of the events in Redis, and says so (None)."""
        from core import db

        self.hot(store, 1, time.time())
        down = Archive(db.make_engine(f"sqlite:///{tmp_path / 'missing' / 'archive.sqlite3'}"))
        counts, archived = Events(store, down).counts()
        assert (counts["processed"], archived) == (1, None)
        down.engine.dispose()
