"""The archiver's pass: it defers to the workers' backlog, within a bound. Real Valkey, a SQLite archive."""

from __future__ import annotations

import json
import time

import pytest

from core.archive import Archive
from core.db import make_engine, upgrade
from core.store import EventStore
from workers.archiver import archive_pass, compact_pass, defers

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
