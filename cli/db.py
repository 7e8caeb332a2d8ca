"""`voucherify-ingest db upgrade`: migrate the mirror's database to what this code needs."""

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
    up = group.add_parser("upgrade", help="migrate MIRROR_DATABASE_URL to the newest schema")
    up.add_argument("--url", help="the database (default MIRROR_DATABASE_URL, else SQLite under DATA_DIR)")
    up.set_defaults(func=cmd_upgrade)


def cmd_upgrade(args: argparse.Namespace) -> int:
    url = args.url or common.mirror_url(common.settings())
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
