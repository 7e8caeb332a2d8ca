"""`voucherify-ingest replay`: re-run one event, or every event matching filters (with a dry run)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from cli import common
from core.queue import TaskQueue
from core.replay import ReplayFilter, replay_many, replay_one
from core.store import STATUSES


def register(sub: Any) -> None:
    """Add the `replay` command."""
    rp = sub.add_parser("replay", help="replay one event (by id) or every event matching filters")
    rp.add_argument("id", nargs="?", help="one event id; omit to replay by filter")
    rp.add_argument("--all-actions", action="store_true", help="re-run every action, not only failed ones")
    rp.add_argument(
        "--status",
        choices=STATUSES,
        metavar="STATUS",
        help="bulk: only events in this status (e.g. dead, failed, invalid)",
    )
    rp.add_argument("--type", dest="event_type", help="bulk: only this event type")
    rp.add_argument("--since", help="bulk: received at or after (ISO-8601 or epoch seconds)")
    rp.add_argument("--until", help="bulk: received at or before (ISO-8601 or epoch seconds)")
    rp.add_argument("--dry-run", action="store_true", help="count what would be replayed, replay nothing")
    rp.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    if args.id and (args.status or args.event_type or args.since or args.until):
        print("give an event id or filters, not both", file=sys.stderr)
        return 2
    store = common.store()
    queue = TaskQueue(store.settings)
    if args.id:
        if store.document(args.id) is None:
            print(f"no event {args.id}", file=sys.stderr)
            return 1
        if args.dry_run:
            print(f"would replay 1 event: {args.id}")
            return 0
        if not replay_one(store, queue, args.id, all_actions=args.all_actions):
            print(f"no event {args.id}", file=sys.stderr)
            return 1
        print(f"replayed {args.id}")
        return 0
    flt = ReplayFilter(
        status=args.status,
        event_type=args.event_type,
        since=common.parse_time(args.since),
        until=common.parse_time(args.until),
    )
    total = replay_many(store, queue, flt, dry_run=True)
    if args.dry_run:
        print(f"would replay {total} event(s)")
        return 0

    def progress(done: int) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        print(
            f"\rreplaying [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
            end="",
            file=sys.stderr,
            flush=True,
        )

    done = replay_many(store, queue, flt, all_actions=args.all_actions, progress=progress)
    print(file=sys.stderr)
    print(f"replayed {done} event(s)")
    return 0
