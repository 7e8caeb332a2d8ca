"""The Celery application factory."""

from __future__ import annotations

import logging
import sys
from urllib.parse import urlsplit

from celery import Celery

from core.logs import configure_logging, secrets_of, warn_if_unsigned
from core.queue import ARCHIVE, ARCHIVE_QUEUE, RECONCILE, RECONCILE_QUEUE, celery_config
from core.settings import Settings
from schemas import fastpath
from workers import broker

log = logging.getLogger("workers.app")


class WorkerApp(Celery):
    """Celery, carrying the settings the tasks build their collaborators from."""

    settings: Settings


def create_celery(settings: Settings | None = None) -> WorkerApp:
    """Build the worker app. Reads the environment only when no settings are passed."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level, redact=secrets_of(settings), fmt=settings.log_format)
    warn_if_unsigned(settings, "worker")
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # beat keeps its schedule file there
    fastpath.configure(settings.schema_fast_path)
    _check_handlers(settings)
    _check_templates(settings)
    _check_mirror(settings)
    _check_archive(settings)
    app = WorkerApp("workers", set_as_current=True)
    app.settings = settings
    # celery_config() declares the queues: a plain `celery -A workers worker` consumes all four, taking
    # turns between them (core/queue.py says why that keeps live deliveries ahead of a replay backlog).
    app.conf.update(celery_config(settings))
    app.conf.update(
        beat_schedule={
            "reconcile": {
                "task": RECONCILE,
                "schedule": settings.reconcile_interval_s,
                # A reconcile that could not run in time is pointless: the next one is coming.
                "options": {"queue": RECONCILE_QUEUE, "expires": max(settings.reconcile_interval_s * 2, 10)},
            },
            # Moves settled events to the archive (or, without one, compresses their bodies in Redis).
            "archive": {
                "task": ARCHIVE,
                "schedule": settings.archive_interval_s,
                "options": {"queue": ARCHIVE_QUEUE, "expires": max(settings.archive_interval_s * 2, 10)},
            },
        },
        beat_schedule_filename=str(settings.data_dir / "celerybeat-schedule"),
    )
    if urlsplit(settings.broker_url).scheme in ("redis", "rediss"):
        # kombu's Redis transport with a fix that lets the worker reconnect after a Redis restart.
        app.conf.broker_transport = broker.TRANSPORT
    from workers import signals, tasks  # noqa: F401 - tasks registers the tasks on this app

    signals.connect(settings)

    return app


def _check_handlers(settings: Settings) -> None:
    """Refuse to start (exit code 2) when HANDLERS cannot be used: a typo must not silently route nothing."""
    from workers.handlers import HandlerError
    from workers.runtime import load_handlers

    try:
        specs = load_handlers(settings)
    except HandlerError as exc:
        log.critical("worker refused to start: %s", exc, extra={"reason": "handlers"})
        print(f"configuration error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from exc
    if specs:
        log.info("handlers loaded", extra={"handlers": {s.name: list(s.patterns) for s in specs}})


def _check_templates(settings: Settings) -> None:
    """Refuse to start (exit code 2) on a broken template directory, instead of failing every email.

    Compiling them here, in the parent, is also what the forked pool processes inherit: once per worker.
    """
    from workers.actions.templates import TemplateError, templates_for

    try:
        templates = templates_for(settings.notify_templates_dir)
    except TemplateError as exc:
        log.critical("worker refused to start: %s", exc, extra={"reason": "templates"})
        print(f"configuration error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from exc
    log.info(
        "email templates loaded",
        extra={"templates": str(templates.root), "campaigns": sorted(templates.campaigns)},
    )


def _check_mirror(settings: Settings) -> None:
    """Refuse to start (exit code 2) on a mirror database behind the code: every write would fail."""
    if settings.mirror_database_url:
        _check_database(settings.mirror_database_url, "mirror", "MIRROR_DATABASE_URL")


def _check_archive(settings: Settings) -> None:
    """Refuse to start (exit code 2) on an archive database behind the code (when it is not the mirror's)."""
    url = settings.archive_database_url
    if url and url != settings.mirror_database_url:
        _check_database(url, "archive", "ARCHIVE_DATABASE_URL")


def _check_database(url: str, what: str, variable: str) -> None:
    from sqlalchemy.exc import DBAPIError

    from core import db

    engine = db.make_engine(url)
    try:
        db.check(engine, what)
    except db.SchemaError as exc:
        message = f"{exc}; run `{exc.command}` ({variable})"
        log.critical("worker refused to start: %s", message, extra={"reason": f"{what}_schema"})
        print(f"configuration error: {message}", file=sys.stderr, flush=True)
        raise SystemExit(2) from exc
    except DBAPIError as exc:
        # Unreachable now is not wrong: the mirror action and the archiver retry until the database answers.
        log.warning(
            f"{what} database not reachable at start",
            extra={"reason": "database", "error": type(exc.orig).__name__},
        )
    finally:
        engine.dispose()
