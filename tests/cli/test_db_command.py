"""`voucherify-ingest db upgrade`: the mirror's database, and the archive's when it is another one."""

from __future__ import annotations

import io
from contextlib import redirect_stdout

import cli
from core import db


def upgrade(monkeypatch, **env: str) -> str:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["db", "upgrade"]) == 0
    return out.getvalue()


def at_head(url: str) -> bool:
    engine = db.make_engine(url)
    try:
        return db.current(engine) == db.head()
    finally:
        engine.dispose()


def test_migrates_the_archive_database_too(monkeypatch, tmp_path):
    """With ARCHIVE_DATABASE_URL apart from the mirror's, both are migrated; a second run changes nothing."""
    mirror, archive = f"sqlite:///{tmp_path}/mirror.sqlite3", f"sqlite:///{tmp_path}/archive.sqlite3"
    out = upgrade(
        monkeypatch, MIRROR_DATABASE_URL=mirror, ARCHIVE_DATABASE_URL=archive, DATA_DIR=str(tmp_path)
    )
    assert out.count("migrated from empty") == 2
    assert at_head(mirror)
    assert at_head(archive)
    assert upgrade(monkeypatch).count("already at") == 2


def test_one_database_when_the_archive_is_the_mirrors(monkeypatch, tmp_path):
    """By default the archive lives in the mirror's database: migrated once."""
    mirror = f"sqlite:///{tmp_path}/mirror.sqlite3"
    monkeypatch.delenv("ARCHIVE_DATABASE_URL", raising=False)
    out = upgrade(monkeypatch, MIRROR_DATABASE_URL=mirror, DATA_DIR=str(tmp_path))
    assert out.count("migrated from empty") == 1
