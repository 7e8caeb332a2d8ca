"""`voucherify-ingest replay`: re-run one event, or every event matching filters (with a dry run)."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from typing import Any

from cli import common
from core.archive import Archive
from core.history import Events
from core.queue import TaskQueue
from core.replay import (
    NOTHING,
    WOULD_RUN_LIMIT,
    JobNotStartedError,
    ReplayFilter,
    count_matching,
    job_view,
    replay_one,
    start_job,
)
from core.replay import would_run as replay_would_run
from core.store import STATUSES, EventStore


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
    rp.add_argument("--all", action="store_true", help="bulk: every stored event (needed when no filter)")
    rp.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    if args.id and (args.status or args.event_type or args.since or args.until or args.all):
        print("give an event id or filters, not both", file=sys.stderr)
        return 2
    store = common.store()
    events = common.events(store)
    try:
        return _replay(args, store, events)
    finally:
        events.close()


def _replay(args: argparse.Namespace, store: EventStore, events: Events) -> int:
    queue = TaskQueue(store.settings)
    if args.id:
        if events.document(args.id) is None:
            print(f"no event {args.id}", file=sys.stderr)
            return 1
        if args.dry_run:
            print(f"would replay 1 event: {args.id}")
            return 0
        if not replay_one(store, queue, args.id, all_actions=args.all_actions, archive=events.archive):
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
    if flt == ReplayFilter() and not args.all:
        print("no filter given: add --all to replay every stored event", file=sys.stderr)
        return 2
    if args.dry_run:
        total = count_matching(store, flt, archive=events.archive)
        print(f"would replay {total} event(s)")
        _print_would_run(would_run(store, flt, all_actions=args.all_actions), total)
        return 0
    return _replay_job(store, queue, flt, all_actions=args.all_actions, archive=events.archive)


def _replay_job(
    store: Any, queue: TaskQueue, flt: ReplayFilter, *, all_actions: bool, archive: Archive | None
) -> int:
    """Start a bulk replay job (a worker runs it, as for POST /admin/replay) and draw its progress."""
    try:
        job = start_job(store, queue, flt, all_actions=all_actions, archive=archive)
    except JobNotStartedError as exc:
        print(f"cannot reach the broker: job {exc} was not started", file=sys.stderr)
        return 1
    job_id = job["job"]
    print(f"job {job_id}: replaying {job['total']} event(s) on a worker", file=sys.stderr)
    waited = time.monotonic()
    while True:
        seen = job_view(store, job_id)
        if seen is None:
            print(f"job {job_id} is gone", file=sys.stderr)
            return 1
        job = seen
        _progress(job["done"], job["total"])
        if job["state"] in ("done", "failed"):
            break
        if job["state"] == "queued" and waited and time.monotonic() - waited > 10:
            print(f"\nstill waiting for a worker to start job {job_id}: is one running?", file=sys.stderr)
            waited = 0.0
        time.sleep(0.2)
    print(file=sys.stderr)
    if job["state"] == "failed":
        print(f"job {job_id} failed: {job['error']}", file=sys.stderr)
        return 1
    print(f"replayed {job['count']} event(s)")
    return 0


def _progress(done: int, total: int) -> None:
    width = 30
    # The total is the store's count when the job started; events that expired meanwhile are skipped.
    filled = min(width, int(width * done / total)) if total else width
    print(
        f"\rreplaying [{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
        end="",
        file=sys.stderr,
        flush=True,
    )


def would_run(
    store: EventStore, flt: ReplayFilter, *, all_actions: bool = False, limit: int = WOULD_RUN_LIMIT
) -> Counter[str]:
    """For a dry run: how many of the matching events would run each action, as the workers route now
    (core.replay.would_run with the worker's own routing: its table, HANDLERS and forward destinations)."""
    from workers import dispatch
    from workers.runtime import load_handlers

    handlers = load_handlers(store.settings)
    return replay_would_run(
        store,
        flt,
        lambda event_type: dispatch.actions_for(event_type, store.settings, handlers),
        all_actions=all_actions,
        limit=limit,
    )


def _print_would_run(counts: Counter[str], total: int) -> None:
    if not counts:
        return
    looked = min(total, WOULD_RUN_LIMIT)
    print(f"per action, events that would run it{'' if looked >= total else f' (of the oldest {looked})'}:")
    width = max(len(n) for n in counts)
    for name, n in sorted(counts.items(), key=lambda kv: (kv[0] == NOTHING, kv[0])):
        print(f"  {name:<{width}}  {n}")
