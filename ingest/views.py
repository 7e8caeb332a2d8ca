"""The intake's probes: `/healthz` (the process answers) and `/readyz` (the store and the broker do).

The webhook route itself is ingest/intake.py, answered ahead of Flask's request machinery.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from core import mailstatus
from core.store import StoreUnavailableError
from ingest.services import services

bp = Blueprint("intake", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    svc = services()
    store_ok = svc.store.ping()
    broker_ok = store_ok if svc.settings.broker_url == svc.settings.redis_url else svc.queue.ping()
    ready = store_ok and broker_ok
    # What the workers found at start about the SMTP server ("ok", or why no email can go out, such as
    # smtp_tls_required). Reported, not a reason to be unready: the intake's job, storing deliveries, is
    # unaffected, and a 503 would only take it out of its load balancer.
    try:
        mail = mailstatus.read(svc.store) if store_ok else None
    except StoreUnavailableError:
        mail = None
    body = jsonify(
        status="ready" if ready else "unavailable",
        store=store_ok,
        broker=broker_ok,
        unsigned=not svc.settings.webhook_secrets,  # accepting anyone's deliveries: say so to every probe
        mail=mail,
    )
    return body, 200 if ready else 503
