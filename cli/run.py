"""`voucherify-ingest run`: the whole service locally, on an embedded Valkey unless REDIS_URL names one."""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from cli import commands, common, embedded
from cli.common import redact
from core import db
from core.settings import Settings


def register(sub: Any) -> None:
    """Add the `run` command."""
    run = sub.add_parser(
        "run", help="run intake + worker + reconciler locally (embedded store unless REDIS_URL)"
    )
    run.add_argument("--host", default="127.0.0.1", help="intake bind address (default 127.0.0.1)")
    run.add_argument("--port", type=int, default=None, help="intake port (default $PORT or 8000)")
    run.add_argument("--workers", type=int, default=2, help="Celery worker processes (default 2)")
    run.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the embedded store keeps its AOF (default $DATA_DIR or ./var)",
    )
    run.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    port = args.port or settings.port
    data_dir = (args.data_dir or settings.data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    # The children read their settings from the environment, as under the Procfile.
    env = dict(os.environ, DATA_DIR=str(data_dir), PORT=str(port))
    # The quick start has the mirror: SQLite under DATA_DIR unless MIRROR_DATABASE_URL names a database,
    # migrated here (before anything is started) so the worker, which refuses an old schema, starts.
    mirror_url = settings.mirror_database_url or common.default_mirror_url(data_dir)
    env["MIRROR_DATABASE_URL"] = mirror_url
    engine = db.make_engine(mirror_url)
    try:
        before, after = db.upgrade(engine)
    finally:
        engine.dispose()
    print(f"mirror     {redact(mirror_url)} (schema {after}{'' if before == after else ', migrated'})")
    # The archive (settled events leave the embedded store after ARCHIVE_AFTER_SECONDS): the mirror's database
    # unless ARCHIVE_DATABASE_URL names another, migrated here too.
    archive_url = os.environ.get("ARCHIVE_DATABASE_URL", "").strip() and settings.archive_database_url
    if archive_url and archive_url != mirror_url:
        engine = db.make_engine(archive_url)
        try:
            before, after = db.upgrade(engine)
        finally:
            engine.dispose()
        print(f"archive    {redact(archive_url)} (schema {after}{'' if before == after else ', migrated'})")
    else:
        print(f"archive    settled events move to the mirror's database after {settings.archive_after_s} s")
    server = None
    if not settings.store_configured:
        server = embedded.start(data_dir / "valkey")
        env["REDIS_URL"] = server.connection_url
        embedded.url_file(data_dir).write_text(server.connection_url)
        print(f"store      embedded Valkey at {server.connection_url} (AOF in {data_dir / 'valkey'})")
    else:
        print(f"store      {redact(settings.redis_url)}")
    if not settings.webhook_secrets and not settings.allow_unsigned:
        env["VOUCHERIFY_WEBHOOK_SECRETS"] = dev_secret(data_dir)
        print(
            f"secret     a local secret was generated in {data_dir / 'dev-secret'} "
            "(set VOUCHERIFY_WEBHOOK_SECRETS to your project's secret key)"
        )
    if not settings.admin_token:
        env["ADMIN_TOKEN"] = local_admin_token(data_dir)
        print(
            f"admin      a local admin token was generated in {data_dir / 'admin-token'} "
            "(set ADMIN_TOKEN to choose your own)"
        )
    Settings.from_env(env).require_secrets()

    procs: list[subprocess.Popen[bytes]] = []
    try:
        for argv in commands.local(host=args.host, port=port, concurrency=args.workers, data_dir=data_dir):
            procs.append(subprocess.Popen(argv, env=env))
        print(f"intake     http://{args.host}:{port}/webhooks/voucherify  (point Voucherify here)")
        print(f"console    http://{args.host}:{port}/console/  (log in with the admin token)")
        print("try it     voucherify-ingest send-test publication.succeeded --email you@example.com")
        print(
            "and        voucherify-ingest send-test voucher.updated; "
            "voucherify-ingest mirror voucher 10-percent-item-3"
        )
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


def dev_secret(data_dir: Path) -> str:
    """The local webhook secret `run` generates on first use (kept in `data_dir`)."""
    return _local_secret(data_dir / "dev-secret")


def local_admin_token(data_dir: Path) -> str:
    """The local ADMIN_TOKEN `run` generates on first use (kept in `data_dir`): the console's login."""
    return _local_secret(data_dir / "admin-token")


def _local_secret(path: Path) -> str:
    if not path.exists():
        # Created readable by its owner only, never world-readable for a moment.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(24))
    return path.read_text().strip()
