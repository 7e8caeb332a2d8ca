"""`voucherify-ingest routes`: what runs for each event type (built-in actions, handlers, forwards)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from core.settings import Settings


def register(sub: Any) -> None:
    """Add the `routes` command."""
    rt = sub.add_parser("routes", help="the actions each event type runs, and the types knowingly ignored")
    rt.add_argument("--json", action="store_true", help="print JSON instead of a table")
    rt.set_defaults(func=cmd_routes)


def cmd_routes(args: argparse.Namespace) -> int:
    # The worker's own code decides: the same table, handlers and forwards a worker with these settings runs.
    from workers import dispatch
    from workers.handlers import HandlerError
    from workers.runtime import load_handlers

    settings = Settings.from_env()
    try:
        handlers = load_handlers(settings)
    except HandlerError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    where = {h.name: h.where for h in handlers}
    routed = dispatch.routes_table(settings, handlers)
    types = list(routed)
    ignored = [t for t, names in routed.items() if not names]
    if args.json:
        out = {"routes": {t: list(n) for t, n in routed.items() if n}, "ignored": ignored, "handlers": where}
        print(json.dumps(out, indent=2))
        return 0
    width = max(len(t) for t in types)
    for event_type, names in routed.items():
        if names:
            print(f"{event_type:<{width}}  {', '.join(names)}")
    print(f"\nknowingly ignored ({len(ignored)}): stored and acknowledged, nothing runs")
    for event_type in ignored:
        print(f"  {event_type}")
    if where:
        print("\nhandlers:")
        for name, place in where.items():
            print(f"  {name}  ({place})")
    return 0
