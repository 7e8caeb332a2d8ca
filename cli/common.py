"""What every store-reading command shares: the settings, and the store a local `run` started."""

from __future__ import annotations

import argparse
from pathlib import Path
from urllib.parse import urlsplit

from cli import embedded
from core.archive import Archive
from core.history import Events
from core.settings import Settings
from core.store import EventStore


def settings() -> Settings:
    """Settings, with the store defaulting to the embedded server a local `run` started."""
    s = Settings.from_env()
    if not s.store_configured:
        path = embedded.url_file(s.data_dir.resolve())
        if path.exists():
            s = s.with_store(path.read_text().strip())
    return s


def mirror_url(s: Settings) -> str:
    """The mirror's database: MIRROR_DATABASE_URL, else the SQLite file a local `run` uses."""
    return s.mirror_database_url or default_mirror_url(s.data_dir)


def default_mirror_url(data_dir: Path) -> str:
    """sqlite:///$DATA_DIR/mirror.sqlite3 (absolute)."""
    return f"sqlite:///{(data_dir.resolve() / 'mirror.sqlite3')}"


def archive_url(s: Settings) -> str | None:
    """The archive's database: ARCHIVE_DATABASE_URL (or MIRROR_DATABASE_URL), else the SQLite file a local
    `run` keeps under DATA_DIR, if there is one."""
    if s.archive_database_url:
        return s.archive_database_url
    local = s.data_dir.resolve() / "mirror.sqlite3"
    return default_mirror_url(s.data_dir) if local.exists() else None


def events(s: EventStore) -> Events:
    """Events of both tiers: the store's and the archive's (when there is one)."""
    url = archive_url(s.settings)
    return Events(s, Archive.from_url(url) if url else None)


def store() -> EventStore:
    """The event store, or exit with a clear message when it does not answer."""
    s = EventStore.from_settings(settings())
    if not s.ping():
        raise SystemExit(f"cannot reach the store at {redact(s.settings.redis_url)} (is it running?)")
    return s


def redact(url: str) -> str:
    """`url` with its password replaced by ***."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def parse_time(value: str | None) -> float | None:
    """Epoch seconds or ISO-8601 with a time zone; None when not given."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        from datetime import datetime

        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise SystemExit(f"{value}: expected epoch seconds or an ISO-8601 time") from None
        if dt.tzinfo is None:
            raise SystemExit(f"{value}: give a time zone (e.g. a trailing Z)") from None
        return dt.timestamp()


def usage(parser: argparse.ArgumentParser) -> int:
    """Print a command's help; exit status 2 (a command group named without a subcommand)."""
    parser.print_help()
    return 2
