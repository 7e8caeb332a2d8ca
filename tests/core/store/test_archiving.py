"""The hot tier's side of the archive: which events are due, deleting them only if unchanged, bringing one
back, compacting bodies without an archive, and the lag gauge's reading. Real Valkey, a SQLite archive."""

from __future__ import annotations

import json
import time

import pytest

from core.archive import Archive, codec
from core.db import make_engine, upgrade
from core.history import Events
from core.states import ActionState, ActionStatus

BODY = json.dumps({"event": {"id": "evt_v1", "type": "voucher.updated"}, "data": {"x": "y" * 300}}).encode()
HOUR = 3600.0


def settle(store, n, *, received, settled, status="processed", body=BODY, event_type="voucher.updated"):
    """An event received at `received` and settled at `settled` (epoch seconds)."""
    event_id, _ = store.accept(
        body, dedup_key=f"ev:src_1:evt_{n}", headers={"a": "b"}, secret="secret:0", now=received
    )
    state = ActionState(ActionStatus.DEAD if status == "dead" else ActionStatus.SUCCEEDED, attempts=2)
    store.set_status(
        event_id, status, now=settled, outbox=False, event_type=event_type, actions={"forward:crm": state}
    )
    return event_id


def hot_keys(store, event_id):
    return [kind for kind in ("ev", "raw", "act") if store.r.exists(store.key(kind, event_id))]


def in_indexes(store, event_id):
    p = store.p
    keys = [f"{p}:all", f"{p}:outbox", *(k.decode() for k in store.r.scan_iter(f"{p}:st:*"))]
    keys += [k.decode() for k in store.r.scan_iter(f"{p}:ty:*")]
    return [k for k in keys if store.r.zscore(k, event_id) is not None]


@pytest.fixture
def archive(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'archive.sqlite3'}")
    upgrade(engine)
    return Archive(engine)


@pytest.fixture
def now():
    return time.time()


class TestDue:
    def test_only_events_settled_longer_ago_than_the_window(self, store, now):
        """Settled > ARCHIVE_AFTER ago: due; settled since, or received long ago but settled just now: not."""
        old = settle(store, 1, received=now - 3 * HOUR, settled=now - 2 * HOUR)
        retried = settle(store, 2, received=now - 3 * HOUR, settled=now - 60)
        fresh = settle(store, 3, received=now - 120, settled=now - 60)
        unfinished, _ = store.accept(BODY, dedup_key="k-open", headers={}, secret="s", now=now - 3 * HOUR)
        due = store.due_for_archive(now=now, after_s=HOUR)
        assert [e.id for e in due] == [old]
        assert {retried, fresh, unfinished}.isdisjoint(e.id for e in due)

    def test_reads_the_whole_event(self, store, now):
        """Document fields, actions' states and the body as received, exactly as Redis holds them."""
        event_id = settle(store, 1, received=now - 3 * HOUR, settled=now - 2 * HOUR, status="dead")
        (e,) = store.due_for_archive(now=now, after_s=HOUR)
        assert e.raw == BODY
        assert e.fields["status"] == "dead"
        assert e.fields["dedup_key"] == "ev:src_1:evt_1"
        assert json.loads(e.actions["forward:crm"])["attempts"] == 2
        assert e.id == event_id

    def test_the_document_is_the_hashes_exactly_whatever_their_values_hold(self, store, archive, now):
        """The document is encoded in Redis (lua/collect.lua): slashes, quotes, backslashes, control and
        non-ASCII characters in any field come back as written, an event with no action state has `{}`,
        and the archive's row reads back to the same event."""
        odd = {"Referer": 'https://shop.example/a/b?q="x"\\y', "X-Name": "Zoë ✓ 券\n\t\u0001"}
        event_id, _ = store.accept(
            BODY, dedup_key="ev:src_1:evt_odd", headers=odd, secret="secret:0", now=now - 3 * HOUR
        )
        store.set_status(event_id, "ignored", now=now - 2 * HOUR, outbox=False, event_type="voucher.updated")
        expected = {k.decode(): v.decode() for k, v in store.r.hgetall(store.key("ev", event_id)).items()}
        (e,) = store.due_for_archive(now=now, after_s=HOUR)
        assert e.fields == expected
        assert e.actions == {}
        assert json.loads(e.fields["headers"])["X-Name"] == odd["X-Name"]
        archive.write([e], now=now)
        back = archive.get(event_id)
        assert back is not None
        assert (back.fields, back.actions, back.raw) == (expected, {}, BODY)

    def test_a_compacted_body_is_read_as_received(self, store, now):
        """A body compressed in place (no archive at the time) is archived as received, without raw_codec."""
        event_id = settle(store, 1, received=now - 3 * HOUR, settled=now - 2 * HOUR)
        assert store.compact(now=now, after_s=HOUR) == 1
        (e,) = store.due_for_archive(now=now, after_s=HOUR)
        assert e.raw == BODY
        assert "raw_codec" not in e.fields
        hot = {k.decode(): v.decode() for k, v in store.r.hgetall(store.key("ev", event_id)).items()}
        assert hot.pop("raw_codec") == codec.DEFAULT
        assert e.fields == hot


class TestForget:
    def test_deletes_the_event_and_its_index_entries_but_not_its_dedup_claim(self, store, now):
        """After archiving only the dedup claim (and counters) are left: a duplicate is still recognised."""
        event_id = settle(store, 1, received=now - 3 * HOUR, settled=now - 2 * HOUR)
        due = store.due_for_archive(now=now, after_s=HOUR)
        assert store.forget_archived(due) == [event_id]
        assert hot_keys(store, event_id) == []
        assert in_indexes(store, event_id) == []
        assert store.r.get(store.key("dd", "ev:src_1:evt_1")) == event_id.encode()
        again, created = store.accept(BODY, dedup_key="ev:src_1:evt_1", headers={}, secret="s", now=now)
        assert (again, created) == (event_id, False)
        assert store.worker_counters().archived == 1

    def test_an_event_that_changed_since_it_was_read_stays(self, store, now):
        """A replay (or a duplicate delivery) between the read and the delete keeps the event hot."""
        replayed = settle(store, 1, received=now - 3 * HOUR, settled=now - 2 * HOUR)
        duplicated = settle(store, 2, received=now - 3 * HOUR, settled=now - 2 * HOUR)
        due = store.due_for_archive(now=now, after_s=HOUR)
        assert store.reset_for_replay(replayed)
        store.accept(BODY, dedup_key="ev:src_1:evt_2", headers={}, secret="s", now=now)
        assert store.forget_archived(due) == []
        assert hot_keys(store, replayed) == hot_keys(store, duplicated) == ["ev", "raw", "act"]


class TestRestore:
    def test_bring_back_restores_exactly_and_deletes_the_row(self, store, archive, now):
        """An archived event brought back for a replay is in Redis as it was, indexed, and the row is gone."""
        event_id = settle(store, 1, received=now - 3 * HOUR, settled=now - 2 * HOUR, status="dead")
        before = store.document(event_id)
        due = store.due_for_archive(now=now, after_s=HOUR)
        archive.write(due, now=now)
        store.forget_archived(due)
        assert store.document(event_id) is None
        assert Events(store, archive).bring_back(event_id)
        assert store.document(event_id) == before
        assert store.raw(event_id) == BODY
        assert store.list_events(status="dead", event_type="voucher.updated")[0]["id"] == event_id
        assert archive.get(event_id) is None
        assert 0 < store.r.ttl(store.key("ev", event_id)) <= store.settings.retention_failed_s

    def test_never_over_a_hot_copy(self, store, archive, now):
        """The hot tier wins: restoring over an event that is in Redis changes nothing."""
        event_id = settle(store, 1, received=now - 3 * HOUR, settled=now - 2 * HOUR)
        (e,) = store.due_for_archive(now=now, after_s=HOUR)
        store.reset_for_replay(event_id)
        assert not store.restore(e)
        assert store.document(event_id)["status"] == "queued"


class TestCompact:
    def test_settled_bodies_are_compressed_and_read_back_as_received(self, store, now):
        """Without an archive, a settled body is stored compressed; every reader gets the original."""
        event_id = settle(store, 1, received=now - 3 * HOUR, settled=now - 2 * HOUR)
        plain = store.r.memory_usage(store.key("raw", event_id))
        assert store.compact(now=now, after_s=HOUR) == 1
        assert store.r.hget(store.key("ev", event_id), "raw_codec") == codec.DEFAULT.encode()
        assert store.r.memory_usage(store.key("raw", event_id)) < plain / 2
        assert store.raw(event_id) == BODY
        assert store.load(event_id).raw == BODY
        assert store.compact(now=now, after_s=HOUR) == 0  # once

    def test_a_replay_expands_the_body_before_a_worker_reads_it(self, store, now):
        """Workers read bodies as received: a replay puts the compacted body back first."""
        from core.replay import replay_one

        class Queue:
            sent: list[str] = []

            def process_event(self, event_id, *, queue="replay"):
                self.sent.append(event_id)

        event_id = settle(store, 1, received=now - 3 * HOUR, settled=now - 2 * HOUR)
        store.compact(now=now, after_s=HOUR)
        assert replay_one(store, Queue(), event_id)
        assert store.r.get(store.key("raw", event_id)) == BODY
        assert store.r.hget(store.key("ev", event_id), "raw_codec") is None
        started = store.begin(event_id, now=now, max_starts=10)
        assert started is not None
        assert started[0].raw == BODY

    def test_waits_at_an_event_not_yet_due(self, store, now):
        """The cursor stops at an old event settled recently, so it is compacted later, not passed over."""
        late = settle(store, 1, received=now - 3 * HOUR, settled=now - 60)
        settle(store, 2, received=now - 2 * HOUR, settled=now - 2 * HOUR)
        assert store.compact(now=now, after_s=HOUR) == 0
        assert store.compact(now=now + HOUR, after_s=HOUR) == 2
        assert store.r.hget(store.key("ev", late), "raw_codec") is not None


class TestLag:
    def test_how_long_the_oldest_due_event_has_waited(self, store, now):
        """0 with nothing due; else how long past ARCHIVE_AFTER the oldest settled event is."""
        assert store.archive_lag(now=now, after_s=HOUR) == 0.0
        settle(store, 1, received=now - 100, settled=now - 50)
        assert store.archive_lag(now=now, after_s=HOUR) == 0.0
        settle(store, 2, received=now - 3 * HOUR, settled=now - 2 * HOUR)
        assert store.archive_lag(now=now, after_s=HOUR) == pytest.approx(HOUR, abs=0.01)
