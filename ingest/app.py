"""The Flask application factory."""

from __future__ import annotations

from flask import Flask, Response, jsonify
from flask.json.provider import DefaultJSONProvider
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from core.archive import Archive
from core.logs import configure_logging, secrets_of, warn_if_unsigned
from core.mirror import Mirror
from core.queue import TaskQueue
from core.settings import Settings
from core.store import EventStore
from ingest import admin, console, intake, metrics, openapi, views
from ingest.services import Services, init_app


def create_app(
    settings: Settings | None = None,
    *,
    store: EventStore | None = None,
    queue: TaskQueue | None = None,
) -> Flask:
    """Build the intake app. Reads the environment only when no settings are passed."""
    settings = settings or Settings.from_env()
    settings.require_secrets()
    configure_logging(settings.log_level, redact=secrets_of(settings), fmt=settings.log_format)
    warn_if_unsigned(settings, "intake")

    app = Flask("ingest", static_folder=None)
    # For the admin API's JSON bodies. The intake reads and bounds webhook bodies itself (ingest/intake.py):
    # under a server that terminates the input stream, Werkzeug's limit silently truncates a chunked body.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    json = DefaultJSONProvider(app)
    json.sort_keys = False  # answers keep the order the code builds them in
    app.json = json
    svc = Services(
        settings=settings,
        store=store or EventStore.from_settings(settings, timeout=2.0),
        queue=queue or TaskQueue(settings),
        mirror=_mirror(settings),
        # The engine connects on first use, like the mirror's.
        archive=Archive.from_url(settings.archive_database_url) if settings.archive_database_url else None,
    )
    init_app(app, svc)
    app.register_blueprint(views.bp)
    app.register_blueprint(admin.bp)
    openapi.document()  # read and checked at start
    app.register_blueprint(openapi.bp)
    app.register_blueprint(console.bp)
    # A test double for the queue has no broker to count messages in.
    counters = metrics.init_app(app, settings, svc.store, getattr(svc.queue, "celery", None))
    intake.init_app(app, svc, counters)
    if settings.trusted_proxies:
        # Believe X-Forwarded-For/-Proto from exactly that many proxies: the console's Secure cookie and its
        # per-client rate limit then see the real scheme and client, and the intake keeps the real client's
        # address. Never by default: a client could send the headers itself. Outermost, so the intake's
        # route (ingest/intake.py) sees what Flask's views see.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]

    @app.errorhandler(HTTPException)
    def json_error(exc: HTTPException) -> tuple[Response, int, list[tuple[str, str]]]:
        # One JSON error shape everywhere, so senders and scripts can read the reason.
        # Keep the exception's own headers (a 405's Allow, which RFC 9110 requires), not its content type.
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        body = jsonify(error=exc.name.lower().replace(" ", "_"), message=exc.description)
        return body, exc.code or 500, headers

    @app.errorhandler(DBAPIError)
    def database_down(exc: DBAPIError) -> tuple[Response, int, dict[str, str]]:
        # The archive (or the mirror) did not answer a read: not the caller's fault, and not a crash.
        body = jsonify(
            error="database_unavailable",
            message=f"the archive database did not answer: {type(exc.orig).__name__}",
        )
        return body, 503, {"Retry-After": "5"}

    return app


def _mirror(settings: Settings) -> Mirror | None:
    # The engine connects on first use: the intake starts (and takes webhooks) with the database down.
    return Mirror.from_url(settings.mirror_database_url) if settings.mirror_database_url else None
