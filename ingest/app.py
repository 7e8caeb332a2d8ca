"""The Flask application factory."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, jsonify
from werkzeug.exceptions import HTTPException

from ingest.logs import configure_logging, secrets_of
from ingest.queue import TaskQueue
from ingest.settings import Settings
from ingest.store import EventStore


@dataclass
class Services:
    """What the views need, built once per app."""

    settings: Settings
    store: EventStore
    queue: TaskQueue


def services() -> Services:
    return current_app.extensions["voucherify"]


def create_app(
    settings: Settings | None = None,
    *,
    store: EventStore | None = None,
    queue: TaskQueue | None = None,
) -> Flask:
    """Build the intake app. Reads the environment only when no settings are passed."""
    settings = settings or Settings.from_env()
    settings.require_secrets()
    configure_logging(settings.log_level, redact=secrets_of(settings))

    app = Flask("ingest", static_folder=None)
    # Werkzeug answers 413 before reading a body over the limit, chunked or not.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    app.extensions["voucherify"] = Services(
        settings=settings,
        store=store or EventStore.from_settings(settings, timeout=2.0),
        queue=queue or TaskQueue(settings),
    )

    from ingest import admin, metrics, views

    app.register_blueprint(views.bp)
    app.register_blueprint(admin.bp)
    svc = app.extensions["voucherify"]
    # A test double for the queue has no broker to count messages in.
    metrics.init_app(app, settings, svc.store, getattr(svc.queue, "celery", None))

    @app.errorhandler(HTTPException)
    def json_error(exc: HTTPException):  # type: ignore[no-untyped-def]
        # One JSON error shape everywhere, so senders and scripts can read the reason.
        return jsonify(error=exc.name.lower().replace(" ", "_"), message=exc.description), exc.code

    return app
