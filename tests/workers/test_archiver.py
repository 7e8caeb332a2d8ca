"""The archiver's pass: it defers to the workers' backlog, within a bound. Real Valkey, a SQLite archive."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy.exc import OperationalError

from core.archive import Archive
from core.db import make_engine, upgrade
from core.store import EventStore
from workers.archiver import archive_or_wait, archive_pass, compact_pass, count_late_duplicates, defers

BODY = json.dumps({"event": {"id": "evt_v1", "type": "voucher.updated"}, "data": {"x": "y" * 300}}).encode()
HOUR = 3600.0


@pytest.fixture
def archive(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'archive.sqlite3'}")
    upgrade(engine)
    yield Archive(engine)
    engine.dispose()


@pytest.fixture
def now():
    return time.time()


def with_settings(store, **changes):
    return EventStore(store.r, store.settings.with_(**changes))


def settled(store, n, *, at):
    """n events settled at `at`, received an hour before."""
    ids = []
    for i in range(n):
        event_id, _ = store.accept(
            BODY, dedup_key=f"ev:src:settled_{at}_{i}", headers={}, secret="secret:0", now=at - HOUR
        )
        store.set_status(event_id, "processed", now=at, outbox=False, event_type="voucher.updated")
        ids.append(event_id)
    return ids


def backlog(store, n, *, at):
    """n events waiting for a worker."""
    for i in range(n):
        store.accept(BODY, dedup_key=f"ev:src:queued_{at}_{i}", headers={}, secret="secret:0", now=at)


class TestDefers:
    def test_a_backlog_holds_the_pass_back_until_it_clears(self, store, archive, now):
        """While ARCHIVE_YIELD_BACKLOG events wait for a worker nothing moves and nothing is swept; once they
        are fewer, the next pass moves everything due."""
        store = with_settings(
            store, archive_after_s=int(HOUR), archive_yield_backlog=5, archive_max_defer_s=int(2 * HOUR)
        )
        due = settled(store, 3, at=now - 2 * HOUR)
        backlog(store, 5, at=now)
        assert defers(store, now=now)
        assert archive_pass(store, archive, now=now) == 0
        assert archive.count() == 0
        assert all(store.document(i) for i in due)
        store.r.zpopmin(f"{store.p}:st:queued")  # a worker took one: 4 wait
        assert not defers(store, now=now)
        assert archive_pass(store, archive, now=now) == 3
        assert archive.count() == 3

    def test_no_longer_once_an_event_waited_max_defer_past_its_time(self, store, archive, now):
        """The deferral is bounded: an event due longer than ARCHIVE_MAX_DEFER_SECONDS is archived despite
        the backlog, so Redis does not keep growing behind a backlog that never clears."""
        store = with_settings(store, archive_after_s=60, archive_yield_backlog=1, archive_max_defer_s=600)
        settled(store, 2, at=now - 2 * HOUR)  # due for 2 h - 60 s: past 600 s
        backlog(store, 3, at=now)
        assert not defers(store, now=now)
        assert archive_pass(store, archive, now=now) == 2
        # Events settled 5 minutes ago: due for 4 minutes, within the bound: deferred.
        settled(store, 2, at=now - 300)
        assert defers(store, now=now)
        assert archive_pass(store, archive, now=now) == 0

    def test_a_pass_under_way_stops_when_events_start_to_wait(self, store, archive, now):
        """The pass runs in a worker's pool process: once an event waits, it stops after its current batch
        (the event is not held behind the rest of the pass)."""
        store = with_settings(
            store, archive_after_s=int(HOUR), archive_yield_backlog=1, archive_max_defer_s=int(2 * HOUR)
        )
        settled(store, 6, at=now - 2 * HOUR)

        def arrives(_batch):
            backlog(store, 1, at=now)

        assert archive_pass(store, archive, now=now, batch=2, after_write=arrives) == 2
        assert archive.count() == 2

    def test_zero_never_defers(self, store, archive, now):
        store = with_settings(store, archive_after_s=int(HOUR), archive_yield_backlog=0)
        settled(store, 2, at=now - 2 * HOUR)
        backlog(store, 50, at=now)
        assert not defers(store, now=now)
        assert archive_pass(store, archive, now=now) == 2

    def test_compacting_defers_too(self, store, now):
        """Without an archive the pass compresses settled bodies: background work as well."""
        store = with_settings(
            store, archive_after_s=int(HOUR), archive_yield_backlog=2, archive_max_defer_s=int(2 * HOUR)
        )
        settled(store, 2, at=now - 2 * HOUR)
        backlog(store, 2, at=now)
        assert compact_pass(store, now=now) == 0
        store.r.zpopmin(f"{store.p}:st:queued")
        assert compact_pass(store, now=now) == 2


class TestLateDuplicates:
    """A duplicate delivery of an event already archived: accept.lua finds the dedup claim but no document,
    and the archiver's next pass adds it to the archived row, as the document would have counted it."""

    @pytest.fixture
    def archived_one(self, store, archive, now):
        store = with_settings(store, archive_after_s=int(HOUR))
        (event_id,) = settled(store, 1, at=now - 2 * HOUR)
        key = store.document(event_id)["dedup_key"]
        assert archive_pass(store, archive, now=now) == 1
        assert not store.r.exists(store.key("ev", event_id))
        return store, event_id, key

    def test_counted_on_the_archived_row(self, archived_one, archive, now):
        store, event_id, key = archived_one
        for _ in range(2):
            redeliver(store, key, event_id)
        archive_pass(store, archive, now=now)
        assert archive.get(event_id).fields["duplicates"] == "2"
        assert not store.r.exists(f"{store.p}:dup:late")
        redeliver(store, key, event_id)
        archive_pass(store, archive, now=now)
        assert archive.get(event_id).fields["duplicates"] == "3"
        # Brought back for a replay, the event has the count in Redis too.
        assert store.restore(archive.get(event_id))
        assert store.document(event_id)["duplicates"] == 3

    def test_an_event_back_in_redis_gets_them_there(self, archived_one, archive, now):
        store, event_id, key = archived_one
        redeliver(store, key, event_id)
        assert store.restore(archive.get(event_id))  # a replay brought it back before the pass ran
        archive.delete([event_id])  # as History.restore does
        assert count_late_duplicates(store, archive) == 0
        assert store.document(event_id)["duplicates"] == 1
        assert not store.r.exists(f"{store.p}:dup:late")

    def test_put_back_when_the_archive_fails(self, archived_one, archive, now, monkeypatch):
        store, event_id, key = archived_one
        redeliver(store, key, event_id)

        def down(counts):
            raise OperationalError("UPDATE", {}, Exception("database is locked"))

        monkeypatch.setattr(archive, "add_duplicates", down)
        assert archive_or_wait(store, archive, budget_s=1.0) == 0  # logged, not raised
        assert store.r.hgetall(f"{store.p}:dup:late") == {event_id.encode(): b"1"}
        monkeypatch.undo()
        archive_pass(store, archive, now=now)
        assert archive.get(event_id).fields["duplicates"] == "1"

    def test_without_an_archive_they_do_not_pile_up(self, store, now):
        """No archive: an event not in Redis has gone with its retention, and its late duplicates are
        dropped rather than kept in Redis for ever."""
        store = with_settings(store, archive_after_s=int(HOUR))
        (event_id,) = settled(store, 1, at=now - 2 * HOUR)
        key = store.document(event_id)["dedup_key"]
        store.r.delete(store.key("ev", event_id))  # what its retention does
        redeliver(store, key, event_id)
        assert store.r.exists(f"{store.p}:dup:late")
        compact_pass(store, now=now)
        assert not store.r.exists(f"{store.p}:dup:late")


def redeliver(store, dedup_key, event_id):
    """The same delivery again: answered as a duplicate of `event_id`."""
    got = store.accept(BODY, dedup_key=dedup_key, headers={}, secret="secret:0")
    assert got == (event_id, False)
