"""The SQL database: the engine factory and Alembic migrations, shared by the mirror and the archive.

One chain of revisions creates both the mirror's tables and the archive's: by default both live in one
database (ARCHIVE_DATABASE_URL defaults to MIRROR_DATABASE_URL); a separate archive database gets the
mirror's tables too, empty.

SQLite gets WAL and a busy timeout, so several worker processes can write one file; PostgreSQL goes through
psycopg 3. Migrations ship inside the package (core/migrations) and run with `voucherify-ingest db upgrade`
(`voucherify-ingest run` runs them by itself); a worker whose database is behind refuses to start.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# How long a SQLite writer waits for another process's write to finish before giving up (a retry).
SQLITE_BUSY_TIMEOUT_MS = 30_000


class SchemaError(RuntimeError):
    """The database's schema is not the one this code needs; `command` says what to run."""

    def __init__(self, message: str, command: str = "voucherify-ingest db upgrade") -> None:
        super().__init__(message)
        self.command = command


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3 (the driver we ship); other URLs are kept."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def make_engine(url: str, *, async_commit: bool = False, **kwargs: Any) -> Engine:
    """An engine for `url`: SQLite in WAL mode with a busy timeout; PostgreSQL through psycopg 3.

    `async_commit` (PostgreSQL): commits return before the WAL is flushed. A server crash can then lose the
    last fraction of a second of writes that were reported done; for the mirror, a rebuild restores them.
    """
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        path = make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, record: Any) -> None:
            # WAL: readers never block the writer; busy_timeout: writers queue instead of failing at once.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    # No pre-ping: it is a round trip per transaction (a fifth of the mirror's cost, measured in
    # docs/benchmarks.md). A connection the server dropped fails its statement instead; SQLAlchemy
    # discards it, and the action's retry gets a fresh one.
    if async_commit:
        kwargs["connect_args"] = {**kwargs.get("connect_args", {}), "options": "-c synchronous_commit=off"}
    return create_engine(url, pool_recycle=1800, **kwargs)


def _config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


@cache
def head() -> str:
    """The revision this code needs."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    rev = script.get_current_head()
    assert rev is not None
    return rev


def current(engine: Engine) -> str | None:
    """The revision the database is at (None: never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Migrate the database to the newest revision; (revision before, revision after)."""
    from alembic import command

    before = current(engine)
    command.upgrade(_config(engine), "head")
    return before, head()


def check(engine: Engine, what: str = "mirror") -> None:
    """Raise SchemaError unless the database is at the revision this code needs (connection errors pass)."""
    rev = current(engine)
    if rev != head():
        raise SchemaError(
            f"the {what} database is at revision {rev or 'none (empty)'}, this code needs {head()}"
        )
