"""The archive under faults: the archiving process killed between the archive write and the Redis delete,
and the archive database unreachable for a while under traffic."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy.engine import make_url

from core import examples
from core.archive import Archive
from core.history import Events
from core.store import EventStore
from ingest import create_app
from tests.faults.helpers import FAULT_ENV, Intake, fault_settings, wait_settled
from tests.support import (
    ROOT,
    TcpProxy,
    fresh_mirror_url,
    parse_metrics,
    sample,
    wait_for,
    worker_env,
)

pytestmark = pytest.mark.integration
HOUR = 3600.0

# One archiver pass in a process of its own; with DIE set, it kills itself (SIGKILL) right after the
# archive's commit and before the Redis delete: the one moment a crash could matter.
PASS = """
import os, signal
from core.archive import Archive
from core.settings import Settings
from core.store import EventStore
from workers.archiver import archive_pass

settings = Settings.from_env()
die = (lambda due: os.kill(os.getpid(), signal.SIGKILL)) if os.environ.get("DIE") else None
archive_pass(
    EventStore.from_settings(settings), Archive.from_url(settings.archive_database_url), batch=25,
    after_write=die,
)
"""


def archiver_pass(redis_url: str, url: str, *, die: bool) -> int:
    env = worker_env(redis_url, ARCHIVE_DATABASE_URL=url, ARCHIVE_AFTER_SECONDS="60")
    if die:
        env["DIE"] = "1"
    done = subprocess.run([sys.executable, "-c", PASS], env=env, cwd=ROOT, timeout=60, capture_output=True)
    return done.returncode


def test_killed_between_archive_write_and_redis_delete(redis_url, mirror_url, tmp_path):
    """kill -9 after the archive committed a batch and before Redis forgot it: every event is in Redis
    still (and 25 in the archive too), each listed once; the next pass archives and forgets them all."""
    settings = fault_settings(redis_url, tmp_path, archive_database_url=mirror_url)
    store = EventStore.from_settings(settings)
    now = time.time()
    ids = []
    for n in range(40):
        event_id, _ = store.accept(
            b'{"n": %d}' % n, dedup_key=f"k{n}", headers={}, secret="s", now=now - HOUR
        )
        store.set_status(event_id, "processed", outbox=False, now=now - HOUR, event_type="voucher.updated")
        ids.append(event_id)
    archive = Archive.from_url(mirror_url)
    events = Events(store, archive)
    try:
        assert archiver_pass(redis_url, mirror_url, die=True) == -signal.SIGKILL
        assert archive.count() == 25
        assert all(store.r.exists(store.key("ev", i)) for i in ids)
        listed = events.list_events(limit=100)
        assert sorted(d["id"] for d in listed) == sorted(ids)
        assert {d["archived_at"] for d in listed} == {None}  # the hot copies win

        assert archiver_pass(redis_url, mirror_url, die=False) == 0
        assert not any(store.r.exists(store.key("ev", i)) for i in ids)
        listed = events.list_events(limit=100)
        assert sorted(d["id"] for d in listed) == sorted(ids)
        assert all(d["archived_at"] for d in listed)
        assert archive.count() == events.count_matching() == 40
        assert store.raw(ids[7]) is None
        assert events.raw(ids[7]) == b'{"n": 7}'
    finally:
        archive.engine.dispose()


def test_archive_database_down_under_traffic(redis_url, postgres_url, tmp_path, workers):
    """PostgreSQL unreachable (a proxy in front of it cut) while events keep arriving: every delivery is
    answered 202, events stay in Redis, the lag gauge rises; once it is back the lag falls to 0 and every
    event ends in the archive."""
    direct = fresh_mirror_url("postgresql", postgres_url, tmp_path)
    proxy = TcpProxy(make_url(direct).port or 5432).start()
    url = make_url(direct).set(port=proxy.port).render_as_string(hide_password=False)
    settings = fault_settings(redis_url, tmp_path, archive_database_url=url, archive_after_s=1)
    store, intake = EventStore.from_settings(settings), Intake(settings)
    worker = workers(
        redis_url,
        **FAULT_ENV,
        ARCHIVE_AFTER_SECONDS="1",
        ARCHIVE_INTERVAL_SECONDS="0.5",
        ARCHIVE_DATABASE_URL=url,
    )
    metrics = create_app(settings).test_client()
    archive = Archive.from_url(direct)

    def lag() -> float:
        return sample(
            parse_metrics(metrics.get("/metrics").get_data(as_text=True)),
            "voucherify_ingest_archive_lag_seconds",
        )

    def post(n: int) -> list[str]:
        out = []
        for _ in range(n):
            t0 = time.monotonic()
            out.append(intake.post(examples.example_envelope("voucher.updated"))["id"])
            slowest[0] = max(slowest[0], time.monotonic() - t0)
            time.sleep(0.05)
        return out

    slowest = [0.0]
    try:
        ids = post(10)
        wait_for(lambda: archive.count() == 10, timeout=30, what="the first events to be archived")
        proxy.cut()
        during = post(60)
        wait_settled(store, during, timeout=30)
        wait_for(lambda: lag() > 2, timeout=30, what="the archive lag to rise")
        assert all(store.r.exists(store.key("ev", i)) for i in during)
        assert archive.count() == 10
        assert "archive database unavailable" in worker.output()
        proxy.restore()
        wait_for(lambda: lag() == 0, timeout=60, what="the archive lag to fall to 0")
        wait_for(lambda: archive.count() == 70, timeout=30, what="every event in the archive")
        assert not any(store.r.exists(store.key("ev", i)) for i in ids + during)
        # Generous: the intake answered in milliseconds; it never waited on the archive.
        assert slowest[0] < 1.0
    finally:
        proxy.stop()
        archive.engine.dispose()
        metrics.application.extensions["voucherify"].events.close()
