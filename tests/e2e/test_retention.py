"""Retention with real processes: a worker and its reconciler, with retention cut to seconds."""

import pytest

from core import examples
from core.settings import Settings
from core.store import EventStore
from ingest import create_app
from tests.support import SECRET, signed, start_worker, wait_for, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


class TestRetention:
    def test_settled_events_and_their_index_entries_disappear(self, redis_url, tmp_path):
        """Processed and ignored events expire after RETENTION_PROCESSED_SECONDS, and the reconciler's
        sweep empties every index of them, with nobody listing events."""
        settings = Settings(redis_url=redis_url, broker_url=redis_url, webhook_secrets=(SECRET,))
        store = EventStore.from_settings(settings)
        env = worker_env(
            redis_url,
            DATA_DIR=str(tmp_path / "data"),
            RETENTION_PROCESSED_SECONDS="1",
            RETENTION_FAILED_SECONDS="1",
        )
        worker = start_worker(env, tmp_path / "worker.log", concurrency=2, quiet=True)
        try:
            intake = create_app(settings.with_(data_dir=tmp_path)).test_client()
            ids = []
            for name in ("voucher.created", "voucher.updated", "publication.succeeded"):
                body, headers = signed(examples.example_envelope(name))
                ids.append(intake.post("/webhooks/voucherify", data=body, headers=headers).json["id"])
            wait_for(
                lambda: store.counts()["processed"] + store.counts()["ignored"] == 3,
                timeout=30,
                what="the events to settle",
            )
            wait_for(
                lambda: all(store.document(i) is None for i in ids), timeout=10, what="the events to expire"
            )

            def indexes_empty():
                keys = list(store.r.scan_iter(f"{store.p}:st:*")) + list(store.r.scan_iter(f"{store.p}:ty:*"))
                return store.r.zcard(f"{store.p}:all") == 0 and not keys

            wait_for(indexes_empty, timeout=20, what="the reconciler to prune the indexes")
            assert store.r.smembers(f"{store.p}:types") == set()
            assert store.counts() == dict.fromkeys(store.counts(), 0)
        finally:
            worker.stop()
