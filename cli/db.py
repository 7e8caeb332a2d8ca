"""`voucherify-ingest db upgrade`: migrate the mirror's and the archive's databases to this code's schema."""

from __future__ import annotations

import argparse
from typing import Any

from cli import common
from core import db


def register(sub: Any) -> None:
    """Add the `db` command group."""
    p = sub.add_parser("db", help="the mirror's SQL database: migrations")
    p.set_defaults(func=lambda args: common.usage(p))
    group = p.add_subparsers(title="subcommands", metavar="SUBCOMMAND")
    up = group.add_parser(
        "upgrade", help="migrate MIRROR_DATABASE_URL (and ARCHIVE_DATABASE_URL) to the newest schema"
    )
    up.add_argument(
        "--url",
        help="the database (default MIRROR_DATABASE_URL, else SQLite under DATA_DIR; and "
        "ARCHIVE_DATABASE_URL when it is another database)",
    )
    up.set_defaults(func=cmd_upgrade)


def cmd_upgrade(args: argparse.Namespace) -> int:
    settings = common.settings()
    urls = [args.url] if args.url else [common.mirror_url(settings)]
    if not args.url and settings.archive_database_url and settings.archive_database_url not in urls:
        urls.append(settings.archive_database_url)
    for url in urls:
        engine = db.make_engine(url)
        try:
            before, after = db.upgrade(engine)
        finally:
            engine.dispose()
        where = common.redact(url)
        if before == after:
            print(f"{where}: already at {after}")
        else:
            print(f"{where}: migrated from {before or 'empty'} to {after}")
    return 0
