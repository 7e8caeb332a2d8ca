"""End-to-end fixtures: a real Celery worker process (with beat, so the reconciler runs) and SMTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.settings import Settings
from core.store import EventStore
from ingest import create_app
from tests.support import SECRET, SmtpSink, start_worker, worker_env

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def e2e_url(valkey_server: str) -> str:
    import redis

    url = f"{valkey_server}/0"
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="module")
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
def worker(e2e_url, smtp_sink, tmp_path_factory):
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    proc = start_worker(worker_env(e2e_url, SMTP_URL=smtp_sink.url, NOTIFY_FROM="shop@example.com"), log)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def e2e_settings(e2e_url, tmp_path_factory) -> Settings:
    return Settings(
        redis_url=e2e_url,
        broker_url=e2e_url,
        webhook_secrets=(SECRET,),
        data_dir=tmp_path_factory.mktemp("data"),
        outbox_lease_s=10,
    )


@pytest.fixture(scope="module")
def e2e_store(e2e_settings) -> EventStore:
    return EventStore.from_settings(e2e_settings)


@pytest.fixture(scope="module")
def intake(e2e_settings, worker):
    """The real intake app (real store, real broker) in front of the real worker."""
    return create_app(e2e_settings).test_client()
