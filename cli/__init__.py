"""`voucherify-ingest`: the one command for operators and developers.

voucherify-ingest run                  everything locally: embedded Valkey, intake, worker, reconciler
voucherify-ingest events list|show     read the event store
voucherify-ingest replay               re-run one event, or many by filter (with --dry-run)
voucherify-ingest send-test TYPE       POST a correctly signed example webhook to a URL
voucherify-ingest stats                counts by status, backlog (outbox, queues), oldest unfinished
voucherify-ingest routes               the actions each event type runs (built-in, handlers, forwards)
voucherify-ingest db upgrade           migrate the mirror's SQL database (MIRROR_DATABASE_URL)
voucherify-ingest mirror voucher CODE  a mirrored voucher (campaign ID, customer ID) with its history; rebuild

Every command has --help. docs/cli.md has examples; docs/metrics.md the series of GET /metrics.
The commands read their configuration from the same settings as the service (core/settings.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from core.settings import ConfigError


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`... | head`): say nothing more, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _parser() -> argparse.ArgumentParser:
    from cli import db, events, mirror, replay, routes, run, send_test, stats

    p = argparse.ArgumentParser(
        prog="voucherify-ingest", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(title="commands", metavar="COMMAND")
    for command in (run, events, replay, routes, send_test, stats, db, mirror):
        command.register(sub)
    return p
