"""`voucherify-ingest`: the one command for operators and developers.

voucherify-ingest run                  everything locally: embedded Valkey, intake, worker, reconciler
voucherify-ingest events list|show     read the event store
voucherify-ingest replay               re-run one event, or many by filter (with --dry-run)
voucherify-ingest send-test TYPE       POST a correctly signed example webhook to a URL
voucherify-ingest stats                counts by status, backlog (outbox, queues), oldest unfinished

Every command has --help. docs/cli.md has examples; docs/metrics.md the series of GET /metrics.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ingest import embedded, examples, signature
from ingest.settings import ConfigError, Settings
from ingest.store import STATUSES


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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="voucherify-ingest", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    run = sub.add_parser(
        "run", help="run intake + worker + reconciler locally (embedded store unless REDIS_URL)"
    )
    run.add_argument("--host", default="127.0.0.1", help="intake bind address (default 127.0.0.1)")
    run.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "8000")),
        help="intake port (default $PORT or 8000)",
    )
    run.add_argument("--workers", type=int, default=2, help="Celery worker processes (default 2)")
    run.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the embedded store keeps its AOF (default $DATA_DIR or ./var)",
    )
    run.set_defaults(func=cmd_run)

    ev = sub.add_parser("events", help="list or show stored events")
    ev.set_defaults(func=lambda _: _usage(ev))
    evsub = ev.add_subparsers(title="events commands", metavar="COMMAND")
    ls = evsub.add_parser("list", help="events, newest first")
    ls.add_argument("--status", choices=STATUSES, metavar="STATUS", help=f"one of {', '.join(STATUSES)}")
    ls.add_argument("--type", dest="event_type", help="event type, e.g. publication.succeeded")
    ls.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(func=cmd_events_list)
    show = evsub.add_parser("show", help="one event with its actions' history")
    show.add_argument("id", help="our event id (evt_...), as the intake answered and `events list` shows")
    show.add_argument("--raw", action="store_true", help="also print the body as received")
    show.set_defaults(func=cmd_events_show)

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

    st = sub.add_parser(
        "send-test", help="POST a correctly signed example webhook (from the corpus or a file)"
    )
    st.add_argument("event_type", nargs="?", help="an event type or example name, e.g. publication.succeeded")
    st.add_argument("--file", type=Path, help="send this JSON file (an envelope, or a data object to wrap)")
    st.add_argument("--url", default=None, help="default: http://127.0.0.1:$PORT/webhooks/voucherify")
    st.add_argument(
        "--secret",
        default=None,
        help="default: first of $VOUCHERIFY_WEBHOOK_SECRETS, or the local secret `run` made",
    )
    st.add_argument("--email", help="set the customer's email (to see a notification arrive)")
    st.add_argument("--list", action="store_true", help="list the example names and exit")
    st.set_defaults(func=cmd_send_test)

    stats = sub.add_parser("stats", help="counts by status, backlog and the oldest unfinished event")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.set_defaults(func=cmd_stats)
    return p


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


# -- run --------------------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    data_dir = (args.data_dir or settings.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, DATA_DIR=str(data_dir))
    server = None
    if not os.environ.get("REDIS_URL"):
        server = embedded.start(data_dir / "valkey")
        env["REDIS_URL"] = server.connection_url
        embedded.url_file(data_dir).write_text(server.connection_url)
        print(f"store      embedded Valkey at {server.connection_url} (AOF in {data_dir / 'valkey'})")
    else:
        print(f"store      {_redact(os.environ['REDIS_URL'])}")
    if not settings.webhook_secrets and not settings.allow_unsigned:
        env["VOUCHERIFY_WEBHOOK_SECRETS"] = _dev_secret(data_dir)
        print(
            f"secret     a local secret was generated in {data_dir / 'dev-secret'} "
            "(set VOUCHERIFY_WEBHOOK_SECRETS to your project's secret key)"
        )
    Settings.from_env(env).require_secrets()

    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    # JSON logs from gunicorn itself, and a fresh metrics directory for this run.
                    "--config",
                    "python:ingest.gunicorn_conf",
                    "--bind",
                    f"{args.host}:{args.port}",
                    "--workers",
                    "2",
                    "--threads",
                    "4",
                    "--graceful-timeout",
                    "10",
                    "ingest:create_app()",
                ],
                env=env,
            )
        )
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "workers",
                    "--quiet",  # no ASCII banner: every line the worker writes is a JSON log line
                    "worker",
                    "--beat",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    str(args.workers),
                    "--schedule",
                    str(data_dir / "celerybeat-schedule"),
                ],
                env=env,
            )
        )
        print(f"intake     http://{args.host}:{args.port}/webhooks/voucherify  (point Voucherify here)")
        print("try it     voucherify-ingest send-test publication.succeeded --email you@example.com")
        print("stop       Ctrl-C", flush=True)
        stop = _wait_for_signal(procs)
        return 0 if stop else 1
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if server is not None:
            server.stop()
            embedded.url_file(data_dir).unlink(missing_ok=True)


def _wait_for_signal(procs: list[subprocess.Popen[bytes]]) -> bool:
    """Block until Ctrl-C / SIGTERM (True) or until a child exits on its own (False)."""
    stopping = False

    def handler(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    while not stopping:
        for proc in procs:
            if proc.poll() is not None:
                print(f"a process exited with code {proc.returncode}; stopping the rest", file=sys.stderr)
                return False
        time.sleep(0.2)
    return True


def _dev_secret(data_dir: Path) -> str:
    path = data_dir / "dev-secret"
    if not path.exists():
        path.write_text(secrets.token_hex(24))
        path.chmod(0o600)
    return path.read_text().strip()


def _redact(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


# -- store-reading commands -----------------------------------------------------------------------------


def _settings_for_store() -> Settings:
    """Settings, with REDIS_URL defaulting to the embedded server a local `run` started."""
    env = dict(os.environ)
    if not env.get("REDIS_URL"):
        path = embedded.url_file(Path(env.get("DATA_DIR", "var")).resolve())
        if path.exists():
            env["REDIS_URL"] = path.read_text().strip()
    return Settings.from_env(env)


def _store() -> Any:
    from ingest.store import EventStore

    store = EventStore.from_settings(_settings_for_store())
    if not store.ping():
        raise SystemExit(f"cannot reach the store at {_redact(store.settings.redis_url)} (is it running?)")
    return store


def cmd_events_list(args: argparse.Namespace) -> int:
    events = _store().list_events(status=args.status, event_type=args.event_type, limit=args.limit)
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


def cmd_events_show(args: argparse.Namespace) -> int:
    store = _store()
    doc = store.document(args.id)
    if doc is None:
        print(f"no event {args.id}", file=sys.stderr)
        return 1
    if args.raw:
        doc["raw"] = (store.raw(args.id) or b"").decode("utf-8", "replace")
    print(json.dumps(doc, indent=2))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from ingest.queue import TaskQueue
    from ingest.replay import ReplayFilter, replay_many, replay_one

    if args.id and (args.status or args.event_type or args.since or args.until):
        print("give an event id or filters, not both", file=sys.stderr)
        return 2
    store = _store()
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
        status=args.status, event_type=args.event_type, since=_when(args.since), until=_when(args.until)
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


def _when(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        from datetime import datetime

        dt = datetime.fromisoformat(value)
        if dt.tzinfo is None:
            raise SystemExit(f"{value}: give a time zone (e.g. a trailing Z)") from None
        return dt.timestamp()


def cmd_stats(args: argparse.Namespace) -> int:
    from ingest.metrics import queue_lengths
    from ingest.queue import TaskQueue

    store = _store()
    counts = store.counts()
    oldest = store.oldest_unfinished()
    out = {
        "counts": counts,
        "outbox": store.outbox_size(),
        # Messages waiting in the broker, per queue; null when the broker does not answer.
        "queues": queue_lengths(TaskQueue(store.settings).celery),
        "oldest_unfinished_age_s": round(time.time() - oldest, 1) if oldest else None,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    for status, n in counts.items():
        print(f"{status:<11} {n}")
    print(f"{'outbox':<11} {out['outbox']}")
    if out["queues"] is None:
        print(f"{'queues':<11} broker unreachable")
    else:
        for name, n in out["queues"].items():
            print(f"{'queue ' + name:<11} {n}")
    age = out["oldest_unfinished_age_s"]
    print(f"{'oldest':<11} {'-' if age is None else f'{age}s'}")
    return 0


# -- send-test ------------------------------------------------------------------------------------------


def cmd_send_test(args: argparse.Namespace) -> int:
    if args.list:
        print("\n".join(examples.names()))
        return 0
    if args.file:
        doc = json.loads(args.file.read_text())
        if not examples.is_envelope(doc):
            if not args.event_type:
                raise SystemExit("--file holds a data object: name its event type too")
            doc = examples.envelope(args.event_type, doc)
    elif args.event_type:
        try:
            doc = examples.example_envelope(args.event_type)
        except KeyError as exc:
            raise SystemExit(str(exc).strip("'\"")) from None
        # Fresh ids, so each test send is a new event rather than a duplicate of the last one.
        fresh = examples.envelope(examples.event_type_of(args.event_type), None)
        doc["id"] = fresh["id"]
        doc["event"] = {**doc["event"], "id": fresh["event"]["id"]}
    else:
        raise SystemExit("name an event type (see --list) or give --file")
    if args.email:
        _set_email(doc, args.email)
    body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    secret = args.secret or _default_secret()
    url = args.url or f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/webhooks/voucherify"
    headers = {"Content-Type": "application/json"}
    if secret:
        headers[signature.HEADER] = signature.sign(secret, body)
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - operator's URL
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    except urllib.error.URLError as exc:
        print(f"cannot reach {url}: {exc.reason}", file=sys.stderr)
        return 1
    print(f"{status} {text.strip()}")
    return 0 if 200 <= status < 300 else 1


def _default_secret() -> str | None:
    env = os.environ.get("VOUCHERIFY_WEBHOOK_SECRETS", "")
    first = next((s.strip() for s in env.split(",") if s.strip()), None)
    if first:
        return first
    path = Path(os.environ.get("DATA_DIR", "var")).resolve() / "dev-secret"
    return path.read_text().strip() if path.exists() else None


def _set_email(doc: dict[str, Any], email: str) -> None:
    data = doc.get("data")
    if not isinstance(data, dict):
        return
    for holder in (data, data.get("publication")):
        if isinstance(holder, dict) and isinstance(holder.get("customer"), dict):
            holder["customer"]["email"] = email


if __name__ == "__main__":
    raise SystemExit(main())
