"""Migrations: upgrade from empty on both databases; a worker refuses a database behind the code."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from core import db
from tests.support import fresh_mirror_url, worker_env, worker_start_refused


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_upgrade_from_empty(kind: str, postgres_url: str | None, tmp_path: Path) -> None:
    """An empty database migrates to head with every documented table; a second upgrade changes nothing."""
    url = (
        fresh_mirror_url(kind, postgres_url, tmp_path)
        if kind == "postgresql"
        else f"sqlite:///{tmp_path}/m.db"
    )
    engine = db.make_engine(url)
    try:
        if kind == "sqlite":
            with pytest.raises(db.SchemaError, match="none"):
                db.check(engine)
            assert db.upgrade(engine) == (None, db.head())
        assert db.upgrade(engine) == (db.head(), db.head())
        db.check(engine)
        names = set(inspect(engine).get_table_names())
        assert {"vouchers", "campaigns", "customers", "publications", "mirror_history"} <= names
    finally:
        engine.dispose()


def test_sqlite_is_wal(tmp_path: Path) -> None:
    """SQLite runs in WAL mode with a busy timeout, so several worker processes can write one file."""
    engine = db.make_engine(f"sqlite:///{tmp_path}/m.db")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == db.SQLITE_BUSY_TIMEOUT_MS
    engine.dispose()


@pytest.mark.integration
def test_worker_refuses_an_old_schema(redis_url: str, tmp_path: Path) -> None:
    """A worker on an unmigrated mirror database exits 2 and names the command that fixes it."""
    env = worker_env(
        redis_url, MIRROR_DATABASE_URL=f"sqlite:///{tmp_path}/old.sqlite3", DATA_DIR=str(tmp_path)
    )
    proc = worker_start_refused(env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "voucherify-ingest db upgrade" in proc.stderr
    assert "MIRROR_DATABASE_URL" in proc.stderr


@pytest.mark.integration
def test_worker_refuses_an_old_archive_schema(redis_url: str, tmp_path: Path) -> None:
    """The same for an archive database of its own (ARCHIVE_DATABASE_URL, the mirror's migrated)."""
    mirror = f"sqlite:///{tmp_path}/mirror.sqlite3"
    engine = db.make_engine(mirror)
    db.upgrade(engine)
    engine.dispose()
    env = worker_env(
        redis_url,
        MIRROR_DATABASE_URL=mirror,
        ARCHIVE_DATABASE_URL=f"sqlite:///{tmp_path}/archive.sqlite3",
        DATA_DIR=str(tmp_path),
    )
    proc = worker_start_refused(env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "the archive database is at revision none" in proc.stderr
    assert "ARCHIVE_DATABASE_URL" in proc.stderr


def test_the_archive_table_is_migrated(tmp_path: Path) -> None:
    """Revision 0003 creates archived_events with the listings' indexes."""
    engine = db.make_engine(f"sqlite:///{tmp_path}/a.db")
    db.upgrade(engine)
    indexes = {i["name"] for i in inspect(engine).get_indexes("archived_events")}
    engine.dispose()
    assert {
        "ix_archived_events_received",
        "ix_archived_events_status",
        "ix_archived_events_type",
        "ix_archived_events_source",
        "ix_archived_events_voucherify_id",
        "ix_archived_events_settled",
    } <= indexes


def test_async_commit_is_per_session(postgres_url: str | None, tmp_path: Path) -> None:
    """MIRROR_ASYNC_COMMIT=1 turns synchronous_commit off for the mirror's sessions only."""
    url = fresh_mirror_url("postgresql", postgres_url, tmp_path)
    for flag, expected in ((True, "off"), (False, "on")):
        engine = db.make_engine(url, async_commit=flag)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == expected
        engine.dispose()


class TestSettings:
    def test_urls(self) -> None:
        """postgresql:// means psycopg 3; sqlite URLs are kept; unset means no mirror."""
        from core.settings import Settings

        env = {"MIRROR_DATABASE_URL": "postgresql://u:p@db/mirror", "MIRROR_ASYNC_COMMIT": "1"}
        s = Settings.from_env(env)
        assert s.mirror_database_url == "postgresql+psycopg://u:p@db/mirror"
        assert s.mirror_async_commit is True
        assert (
            Settings.from_env({"MIRROR_DATABASE_URL": "sqlite:///x.db"}).mirror_database_url
            == "sqlite:///x.db"
        )
        assert Settings.from_env({}).mirror_database_url is None

    def test_bad_scheme_names_the_variable(self) -> None:
        """A URL of another database fails at start, naming MIRROR_DATABASE_URL."""
        from core.settings import ConfigError, Settings

        with pytest.raises(ConfigError, match="MIRROR_DATABASE_URL"):
            Settings.from_env({"MIRROR_DATABASE_URL": "mysql://db/x"})
