"""The console's event list over both tiers: pages by position through Redis and the archive together, every
event once, the hot copy of an event in both."""

from __future__ import annotations

import pytest

from core.archive import Archive
from core.db import make_engine, upgrade
from ingest import create_app
from ingest.console.views import merged_page
from tests.fakes import RecordingQueue

T0 = 1_700_000_000.0


@pytest.fixture
def archive_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'archive.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def stored(store, n, at, *, source=""):
    event_id, _ = store.accept(b"{}", dedup_key=f"k{n}", headers={}, secret="s", now=at, source=source)
    store.set_status(event_id, "processed", outbox=False, now=at + 1, event_type="voucher.updated")
    return event_id


def walk(store, limit, **filters):
    seen, cursor = [], None
    while True:
        docs, nxt = merged_page(store, cursor=cursor, limit=limit, **filters)
        seen += [(d["id"], d["archived_at"] is not None) for d in docs]
        if nxt is None:
            return seen
        at, _, event_id = nxt.partition("_")
        cursor = (float(at), event_id)


def test_pages_walk_both_tiers_in_order_once(settings, store, archive_url):
    """Events alternate between Redis and the archive by received time: pages of 3 show all 10, newest
    first, each once; one caught in both tiers is shown from Redis."""
    app = create_app(settings.with_(archive_database_url=archive_url), store=store, queue=RecordingQueue())
    archive = Archive.from_url(archive_url)
    ids = {}
    for n in range(10):
        ids[n] = stored(store, n, T0 + 10 * n, source="shop" if n % 3 == 0 else "")
    # The odd ones move to the archive; number 5 is archived but not yet deleted from Redis.
    due = [e for e in store.due_for_archive(now=T0 + 10_000, after_s=1, limit=100) if e.id != ids[0]]
    archive.write([e for e in due if e.id in {ids[n] for n in (1, 3, 5, 7, 9)}])
    store.forget_archived([e for e in due if e.id in {ids[n] for n in (1, 3, 7, 9)}])
    with app.app_context():
        got = walk(store, 3)
        expected = [(ids[n], n in (1, 3, 7, 9)) for n in reversed(range(10))]
        assert got == expected
        assert walk(store, 2, source="shop") == [
            (ids[9], True),
            (ids[6], False),
            (ids[3], True),
            (ids[0], False),
        ]
    archive.engine.dispose()
    app.extensions["voucherify"].events.close()
