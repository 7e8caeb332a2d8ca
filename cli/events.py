"""`voucherify-ingest events list|show`: read the events, in Redis and in the archive."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from cli import common
from core.store import STATUSES


def register(sub: Any) -> None:
    """Add the `events` command and its subcommands."""
    ev = sub.add_parser("events", help="list or show stored events")
    ev.set_defaults(func=lambda _: common.usage(ev))
    evsub = ev.add_subparsers(title="events commands", metavar="COMMAND")
    ls = evsub.add_parser("list", help="events, newest first")
    ls.add_argument("--status", choices=STATUSES, metavar="STATUS", help=f"one of {', '.join(STATUSES)}")
    ls.add_argument("--type", dest="event_type", help="event type, e.g. publication.succeeded")
    ls.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(func=cmd_list)
    show = evsub.add_parser("show", help="one event with its actions' history")
    show.add_argument("id", help="our event id (evt_...), as the intake answered and `events list` shows")
    show.add_argument("--raw", action="store_true", help="also print the body as received")
    show.set_defaults(func=cmd_show)


def cmd_list(args: argparse.Namespace) -> int:
    both = common.events(common.store())
    try:
        events = both.list_events(status=args.status, event_type=args.event_type, limit=args.limit)
    finally:
        both.close()
    if args.json:
        print(json.dumps({"events": events}, indent=2))
        return 0
    print(f"{'ID':<34} {'STATUS':<10} {'TYPE':<42} {'RECEIVED':<24} ATT")
    for e in events:
        print(
            f"{e['id']:<34} {e['status']:<10} {(e['event_type'] or '-'):<42} {e['received_at']:<24} "
            f"{e['attempts']}"
        )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    events = common.events(common.store())
    try:
        doc = events.document(args.id)
        if doc is not None and args.raw:
            doc["raw"] = (events.raw(args.id) or b"").decode("utf-8", "replace")
    finally:
        events.close()
    if doc is None:
        print(f"no event {args.id}", file=sys.stderr)
        return 1
    print(json.dumps(doc, indent=2))
    return 0
