"""`voucherify-ingest stats`: counts by status, the backlog, and the oldest unfinished event."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from cli import common
from core.queue import TaskQueue, queue_lengths


def register(sub: Any) -> None:
    """Add the `stats` command."""
    stats = sub.add_parser("stats", help="counts by status, backlog and the oldest unfinished event")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.set_defaults(func=cmd_stats)


def cmd_stats(args: argparse.Namespace) -> int:
    store = common.store()
    events = common.events(store)
    try:
        counts, archived = events.counts()
    finally:
        events.close()
    oldest = store.oldest_unfinished()
    queues = queue_lengths(TaskQueue(store.settings).celery)
    out: dict[str, Any] = {
        # By status over Redis and the archive (what `events list` shows); `archived`: the archive's part,
        # null without an archive or while its database does not answer.
        "counts": counts,
        "archived": archived,
        "outbox": store.outbox_size(),
        # Messages waiting in the broker, per queue; null when the broker does not answer.
        "queues": queues,
        "oldest_unfinished_age_s": round(time.time() - oldest, 1) if oldest else None,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for status, n in counts.items():
        cold = (archived or {}).get(status)
        print(f"{status:<11} {n}" + (f" ({cold} archived)" if cold else ""))
    print(f"{'outbox':<11} {out['outbox']}")
    if queues is None:
        print(f"{'queues':<11} broker unreachable")
    else:
        for name, n in queues.items():
            print(f"{'queue ' + name:<11} {n}")
    age = out["oldest_unfinished_age_s"]
    print(f"{'oldest':<11} {'-' if age is None else f'{age}s'}")
    return 0
