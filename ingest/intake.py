"""The intake: verify, store, enqueue, answer. No validation and no downstream I/O here.

Voucherify counts a delivery as done on any 2xx within 10 s and otherwise retries 12 times, then disables
the webhook (https://docs.voucherify.io/api-reference/introduction-to-webhooks, "Responding to webhooks"),
so everything that can wait happens in a worker.

`POST /webhooks/voucherify[/<source>]` is the one route on the hot path, and it is answered here, from the
WSGI environ, before Flask's request machinery runs: `IntakeRoute` wraps the Flask app's WSGI callable and
hands it every other request. Flask's request context, URL matching, hooks and response object cost about
80 µs of CPU per request on the benchmark machine, a third of the intake's own Python, for a route that
needs none of them (docs/benchmarks.md, "The intake outside Flask's request machinery"). The route is still
declared in Flask's URL map (`init_app`), so a GET is answered 405 with its Allow header, OPTIONS
lists POST, and the API document is checked against it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from werkzeug.exceptions import ClientDisconnected
from werkzeug.wsgi import get_content_length, get_input_stream

from core import jsonguard
from core.store import StoreUnavailableError
from ingest import signature
from ingest.dedup import dedup_key

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from flask import Flask

    from ingest.metrics import IntakeCounters
    from ingest.services import Services

log = logging.getLogger("ingest.intake")

PATH = "/webhooks/voucherify"
# Headers worth keeping with the raw body, as WSGI names them: never credentials or the signature itself.
# HTTP_CONTENT_TYPE/-LENGTH go as Werkzeug's headers drop them: CONTENT_TYPE/-LENGTH are the real ones.
_DROP = frozenset(
    {
        "HTTP_AUTHORIZATION",
        "HTTP_COOKIE",
        "HTTP_PROXY_AUTHORIZATION",
        "HTTP_X_VOUCHERIFY_SIGNATURE",
        "HTTP_CONTENT_TYPE",
        "HTTP_CONTENT_LENGTH",
    }
)
_SIGNATURE = "HTTP_X_VOUCHERIFY_SIGNATURE"
_MAX_HEADER_BYTES = 8192
_STATUS_LINES = {
    202: "202 Accepted",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    404: "404 Not Found",
    413: "413 Content Too Large",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}


@dataclass(frozen=True, slots=True)
class Answer:
    """What the intake answered one delivery, and what the metrics count of it."""

    status: int
    body: bytes
    outcome: str  # the `outcome` label of voucherify_ingest_requests
    secret: str = ""  # the `secret` label: the matching secret's index, or "unsigned"; "" before either
    enqueue_failed: bool = False
    retry_after: bool = False


def _error(status: int, outcome: str, error: str, message: str, **kw: object) -> Answer:
    # The JSON error shape of every other route (ingest/app.py): {"error": ..., "message": ...}.
    body = json.dumps({"error": error, "message": message}, separators=(",", ":")).encode() + b"\n"
    return Answer(status, body, outcome, **kw)  # type: ignore[arg-type]


_INTERNAL = _error(500, "error", "internal_server_error", "the intake failed; the delivery was not stored")


def receive(svc: Services, environ: WSGIEnvironment, source: str) -> Answer:
    """Accept one webhook delivery: 202 once the raw body is durably stored."""
    started = time.perf_counter()
    if source and not _valid_source(source):
        return _error(404, "not_found", "not_found", "unknown webhook source")
    settings = svc.settings
    try:
        raw = _read_body(environ, settings.max_body_bytes)
    except ClientDisconnected:
        # Fewer bytes than its Content-Length, under a server that does not terminate the input stream: the
        # sender went away (it retries a delivery it got no 2xx for). Werkzeug's exception is a 400 too.
        log.warning("webhook refused", extra={"reason": "incomplete_body", "source": source})
        message = "the body ended before its Content-Length; nothing was stored"
        return _error(400, "incomplete", "incomplete_body", message)
    if raw is None:
        log.warning("webhook refused", extra={"reason": "too_large", "source": source})
        return _error(413, "too_large", "too_large", f"the body is over {settings.max_body_bytes} bytes")

    doc = jsonguard.NOT_PARSED
    if settings.webhook_secrets:
        auth = signature.authenticate(
            raw,
            environ.get(_SIGNATURE),
            settings.webhook_secrets,
            fallback_max=settings.signature_fallback_max_bytes,
        )
        if auth.secret is None:
            log.warning("webhook refused", extra={"reason": auth.reason, "source": source, "size": len(raw)})
            message = (
                "the signed body names a key twice"
                if auth.reason == "duplicate_keys"
                else f"{signature.HEADER} is missing or does not match"
            )
            return _error(401, "unauthorized", auth.reason, message)
        # What was signed is what we keep: the compact form when only that matched.
        raw, doc = auth.body, auth.doc
        verdict = f"secret:{auth.secret}"
    else:
        verdict = "unsigned"
    secret = verdict.removeprefix("secret:")  # the metric's label: the secret's index, or "unsigned"

    key = dedup_key(raw, source, doc=doc)
    queue = svc.queue
    try:
        event_id, created = svc.store.accept(
            raw,
            dedup_key=key,
            headers=_kept_headers(environ),
            secret=verdict,
            source=source,
            enqueue=queue.inline_message if queue.inline else None,
        )
    except StoreUnavailableError as exc:
        log.error("store unavailable", extra={"reason": "store_unavailable", "error": type(exc).__name__})
        return _error(
            503,
            "unavailable",
            "store_unavailable",
            "the event store is unreachable; retry later",
            secret=secret,
            retry_after=True,
        )

    enqueue_failed = False
    if created and not queue.inline:
        try:
            queue.process_event(event_id)
        except Exception as exc:
            enqueue_failed = True
            log.warning(
                "enqueue failed; the reconciler will retry",
                extra={"event_id": event_id, "reason": "enqueue_failed", "error": type(exc).__name__},
            )
    status = "queued" if created else "duplicate"
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
    return Answer(
        202,
        f'{{"id":"{event_id}","status":"{status}"}}\n'.encode(),
        "accepted" if created else "duplicate",
        secret,
        enqueue_failed,
    )


def init_app(app: Flask, svc: Services, counters: IntakeCounters) -> None:
    """Answer the intake's route ahead of Flask, and declare it in Flask's URL map.

    The rules have no view function: a POST to them never reaches Flask. Declared, they give a GET its 405
    and Allow header and OPTIONS its answer, as Flask gives every route, and the API document is checked
    against them (tests/ingest/test_openapi.py).
    """
    app.add_url_rule(PATH, "intake.receive", methods=["POST"], defaults={"source": ""})
    app.add_url_rule(f"{PATH}/<source>", "intake.receive", methods=["POST"])
    app.wsgi_app = IntakeRoute(app.wsgi_app, svc, counters)  # type: ignore[method-assign]


class IntakeRoute:
    """WSGI middleware: answers `POST /webhooks/voucherify[/<source>]` itself and passes the rest to `app`."""

    def __init__(self, app: WSGIApplication, svc: Services, counters: IntakeCounters) -> None:
        self.app = app
        self.svc = svc
        self.counters = counters

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        source = _source(environ) if environ.get("REQUEST_METHOD") == "POST" else None
        if source is None:
            return self.app(environ, start_response)
        started = time.perf_counter()
        try:
            answer = receive(self.svc, environ, source)
        except Exception:
            # What Flask would do with a view's exception: log it with its traceback, answer 500 (the sender
            # retries). Nothing was acknowledged, so nothing is lost.
            log.exception("intake failed", extra={"reason": "internal_error", "source": source})
            answer = _INTERNAL
        self.counters.count(answer, time.perf_counter() - started)
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(answer.body)))]
        if answer.retry_after:
            headers.append(("Retry-After", "5"))
        start_response(_STATUS_LINES[answer.status], headers)
        return [answer.body]


def _source(environ: WSGIEnvironment) -> str | None:
    """The `<source>` of an intake path ("" for the bare one), or None when the path is not the intake's.

    Exactly the paths the two rules in Flask's URL map match; anything else (a trailing slash, a doubled
    slash, a deeper path) is Flask's to answer, as it was before this route moved out of it.
    """
    path: str = environ.get("PATH_INFO", "")
    if path == PATH:
        return ""
    if path.startswith(PATH) and path[len(PATH) : len(PATH) + 1] == "/":
        rest = path[len(PATH) + 1 :]
        if rest and "/" not in rest:
            # WSGI gives the path as latin-1 code points of its bytes; Flask matches it as UTF-8.
            try:
                return rest.encode("latin-1").decode()
            except UnicodeError:
                return None
    return None


def _read_body(environ: WSGIEnvironment, limit: int) -> bytes | None:
    """The request body, or None when it is over `limit` bytes; reads at most limit + 1 bytes.

    Not Werkzeug's MAX_CONTENT_LENGTH: with a server that sets `wsgi.input_terminated` (gunicorn does, for
    chunked bodies) it stops reading at the limit without an error, and the prefix looked like the body.
    """
    if (get_content_length(environ) or 0) > limit:
        return None
    # The server terminates the stream (or Werkzeug bounds it by Content-Length): reading cannot hang.
    stream = get_input_stream(environ, max_content_length=None)
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


def _kept_headers(environ: WSGIEnvironment) -> dict[str, str]:
    """The request's headers as Werkzeug lists them (lower-cased), less credentials, up to 8 KiB."""
    out: dict[str, str] = {"remote_addr": environ.get("REMOTE_ADDR") or ""}
    size = 0
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            if key in _DROP:
                continue
            name = key[5:].replace("_", "-").lower()
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            name = key.replace("_", "-").lower()
        else:
            continue
        # WSGI gives header values as latin-1 code points of their bytes, as Werkzeug's headers do.
        size += len(name) + len(value)
        if size > _MAX_HEADER_BYTES:
            break
        out[name] = value
    return out
