"""`voucherify-ingest mirror`: read a mirrored row with its history, or rebuild the mirror from the store."""

from __future__ import annotations

import argparse
import json
import sys
from fnmatch import fnmatchcase
from typing import Any

from sqlalchemy import func, select

from cli import common
from core import db
from core.mirror import Mirror
from core.mirror.snapshots import PATTERNS
from core.mirror.tables import TABLES


def register(sub: Any) -> None:
    """Add the `mirror` command group."""
    p = sub.add_parser("mirror", help="the mirror: show a voucher, campaign or customer; rebuild it")
    p.set_defaults(func=lambda args: common.usage(p))
    group = p.add_subparsers(title="subcommands", metavar="SUBCOMMAND")
    for what, key in (("voucher", "CODE"), ("campaign", "ID"), ("customer", "ID")):
        show = group.add_parser(what, help=f"print the {what} row as JSON with its recent history")
        show.add_argument("key", metavar=key)
        show.set_defaults(func=cmd_show, what=what)
    rb = group.add_parser(
        "rebuild", help="replay every stored event that feeds the mirror into an empty database"
    )
    rb.add_argument("--to", dest="url", help="the empty database to build (default MIRROR_DATABASE_URL)")
    rb.set_defaults(func=cmd_rebuild)


def cmd_show(args: argparse.Namespace) -> int:
    engine = db.make_engine(common.mirror_url(common.settings()))
    try:
        _ready(engine)
        mirror = Mirror(engine)
        row = {"voucher": mirror.voucher, "campaign": mirror.campaign, "customer": mirror.customer}[
            args.what
        ](args.key)
    finally:
        engine.dispose()
    if row is None:
        print(f"no {args.what} {args.key} in the mirror", file=sys.stderr)
        return 1
    print(json.dumps(row, indent=2, ensure_ascii=False))
    return 0


def cmd_rebuild(args: argparse.Namespace) -> int:
    from workers.errors import InvalidPayloadError
    from workers.pipeline import parse

    settings = common.settings()
    url = args.url or common.mirror_url(settings)
    engine = db.make_engine(url)
    try:
        db.upgrade(engine)
        with engine.connect() as conn:
            rows = sum(
                conn.execute(select(func.count()).select_from(t)).scalar_one() for t in TABLES.values()
            )
        if rows:
            print(
                f"{common.redact(url)} is not empty ({rows} rows): rebuild into a new database",
                file=sys.stderr,
            )
            return 2
        store = common.store()
        mirror = Mirror(engine)
        ids = list(store.iter_ids(newest_first=False))
        total, applied = len(ids), 0
        batch: list[tuple[dict[str, Any], str]] = []
        for n, event_id in enumerate(ids, 1):
            ev = store.load(event_id)
            if ev is not None and any(fnmatchcase(ev.event_type, p) for p in PATTERNS):
                try:
                    parse(ev.raw)  # only what the workers validated fed the mirror
                except InvalidPayloadError:
                    pass
                else:
                    batch.append((json.loads(ev.raw), event_id))
            if n % 100 == 0 or n == total:
                # In batches of up to 100 events: one transaction each (the same rows as one by one).
                applied += _apply(mirror, batch)
                batch.clear()
                print(
                    f"\rrebuilding {n}/{total} events read, {applied} applied",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
        print(file=sys.stderr)
        print(f"rebuilt {common.redact(url)} from {applied} event(s)")
        return 0
    finally:
        engine.dispose()


def _apply(mirror: Mirror, batch: list[tuple[dict[str, Any], str]]) -> int:
    """Apply a batch of events in order; how many carried objects. A database error stops the rebuild."""
    applied = 0
    for result in mirror.apply_events(batch):
        if isinstance(result, Exception):
            raise result
        applied += bool(result[1])
    return applied


def _ready(engine: Any) -> None:
    try:
        db.check(engine)
    except db.SchemaError as exc:
        raise SystemExit(f"{exc}; run `{exc.command}`") from None
