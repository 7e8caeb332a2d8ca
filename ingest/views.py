"""The intake: verify, store, enqueue, answer. No validation and no downstream I/O here.

Voucherify counts a delivery as done on any 2xx within 10 s and otherwise retries 12 times, then disables
the webhook (https://docs.voucherify.io/api-reference/introduction-to-webhooks, "Responding to webhooks"),
so everything that can wait happens in a worker.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, g, jsonify, request
from werkzeug.wsgi import get_input_stream

from core import jsonguard, mailstatus
from core.store import StoreUnavailableError
from ingest import signature
from ingest.dedup import dedup_key
from ingest.services import services

log = logging.getLogger("ingest.intake")
bp = Blueprint("intake", __name__)

# Headers worth keeping with the raw body: never credentials or the signature itself.
_DROP_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", signature.HEADER})
_MAX_HEADER_BYTES = 8192


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


@bp.post("/webhooks/voucherify", defaults={"source": ""})
@bp.post("/webhooks/voucherify/<source>")
def receive(source: str) -> Response | tuple[Response, int] | tuple[Response, int, dict[str, str]]:
    """Accept one webhook delivery: 202 once the raw body is durably stored."""
    started = time.perf_counter()
    svc = services()
    if source and not _valid_source(source):
        return jsonify(error="not_found", message="unknown webhook source"), 404
    raw = _read_body(svc.settings.max_body_bytes)
    if raw is None:
        log.warning("webhook refused", extra={"reason": "too_large", "source": source})
        return jsonify(
            error="too_large", message=f"the body is over {svc.settings.max_body_bytes} bytes"
        ), 413

    doc = jsonguard.NOT_PARSED
    if svc.settings.webhook_secrets:
        auth = signature.authenticate(
            raw,
            request.headers.get(signature.HEADER),
            svc.settings.webhook_secrets,
            fallback_max=svc.settings.signature_fallback_max_bytes,
        )
        if auth.secret is None:
            log.warning("webhook refused", extra={"reason": auth.reason, "source": source, "size": len(raw)})
            message = (
                "the signed body names a key twice"
                if auth.reason == "duplicate_keys"
                else f"{signature.HEADER} is missing or does not match"
            )
            return jsonify(error=auth.reason, message=message), 401
        # What was signed is what we keep: the compact form when only that matched.
        raw, doc, verdict = auth.body, auth.doc, f"secret:{auth.secret}"
    else:
        verdict = "unsigned"
    g.secret_verdict = verdict  # counted by ingest.metrics, as are the outcome and a failed enqueue below

    key = dedup_key(raw, source, doc=doc)
    try:
        event_id, created = svc.store.accept(
            raw,
            dedup_key=key,
            headers=_kept_headers(),
            secret=verdict,
            source=source,
            enqueue=svc.queue.inline_message if svc.queue.inline else None,
        )
    except StoreUnavailableError as exc:
        log.error("store unavailable", extra={"reason": "store_unavailable", "error": type(exc).__name__})
        return (
            jsonify(error="store_unavailable", message="the event store is unreachable; retry later"),
            503,
            {"Retry-After": "5"},
        )

    if created and not svc.queue.inline:
        try:
            svc.queue.process_event(event_id)
        except Exception as exc:
            g.enqueue_failed = True
            log.warning(
                "enqueue failed; the reconciler will retry",
                extra={"event_id": event_id, "reason": "enqueue_failed", "error": type(exc).__name__},
            )
    status = g.intake_status = "queued" if created else "duplicate"
    log.info(
        "webhook accepted",
        extra={
            "event_id": event_id,
            "status": status,
            "source": source,
            "secret": verdict,
            "size": len(raw),
            "ms": round((time.perf_counter() - started) * 1000, 2),
        },
    )
    # Rendered by hand: ids are [A-Za-z0-9_] only, and this is the one answer on the hot path.
    return Response(f'{{"id":"{event_id}","status":"{status}"}}\n', 202, mimetype="application/json")


def _read_body(limit: int) -> bytes | None:
    """The request body, or None when it is over `limit` bytes; reads at most limit + 1 bytes.

    Not Werkzeug's MAX_CONTENT_LENGTH: with a server that sets `wsgi.input_terminated` (gunicorn does, for
    chunked bodies) it stops reading at the limit without an error, and the prefix looked like the body.
    """
    if (request.content_length or 0) > limit:
        return None
    # The server terminates the stream (or Werkzeug bounds it by Content-Length): reading cannot hang.
    stream = get_input_stream(request.environ, max_content_length=None)
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = stream.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return None if size > limit else b"".join(chunks)


def _valid_source(source: str) -> bool:
    return len(source) <= 64 and source.replace("-", "").replace("_", "").isalnum() and source.isascii()


def _kept_headers() -> dict[str, str]:
    out: dict[str, str] = {"remote_addr": request.remote_addr or ""}
    size = 0
    for name, value in request.headers.items():
        low = name.lower()
        if low in _DROP_HEADERS:
            continue
        size += len(low) + len(value)
        if size > _MAX_HEADER_BYTES:
            break
        out[low] = value
    return out
