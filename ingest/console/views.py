"""The console's pages. They read and replay through the same core functions as the admin API."""

from __future__ import annotations

import json
import logging
import math
import secrets
import time
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Response,
    abort,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError

from core.history import archived_document
from core.logs import mask_email
from core.queue import queue_lengths
from core.replay import (
    NOTHING,
    WOULD_RUN_LIMIT,
    JobNotStartedError,
    ReplayFilter,
    count_matching,
    job_view,
    replay_one,
    start_job,
    would_run,
)
from core.store import STATUSES, EventStore, iso
from ingest.admin import parse_time
from ingest.console import auth, chart
from ingest.services import services

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
log = logging.getLogger("ingest.console")

# No inline script or style anywhere: everything the pages use is served from /console/static/.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE = 50
# A source filter is checked on each document: a page scans at most this many index entries for it.
SCAN_LIMIT = 5000
OPEN = ("console.login", "console.static")


@bp.before_request
def require_login() -> ResponseReturnValue | None:
    svc = services()
    if not svc.settings.admin_token:
        abort(404)  # like the admin API: no token, no console
    if request.endpoint in OPEN:
        return None
    csrf = auth.session_csrf(svc.store, request, svc.settings.admin_token, svc.settings.console_idle_s)
    if csrf is None:
        if request.method == "POST":
            abort(401, description="log in at /console/login first")
        return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
    if request.method == "POST" and not auth.token_matches(request.form.get("csrf", ""), csrf):
        abort(403, description="csrf: missing or wrong form token; reload the page and try again")
    g.csrf = csrf
    return None


@bp.after_request
def headers(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    if request.endpoint != "console.static":
        resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.app_template_filter("iso")
def iso_time(value: float | None) -> str:
    """Epoch seconds as an RFC 3339 UTC time."""
    return iso(value) or ""


@bp.app_template_filter("age")
def age(value: str | float | None) -> str:
    """`3m 20s`, `2h 5m`, `4d 1h`: how long ago an ISO time or epoch was."""
    if value in (None, ""):
        return ""
    ts = value if isinstance(value, float | int) else _epoch(str(value))
    return _span(max(0.0, time.time() - ts))


def _span(s: float) -> str:
    s = int(s)
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "m", 60), ("m", 60, "s", 1)):
        if s >= size:
            return f"{s // size}{unit} {s % size // sub_size}{sub}"
    return f"{s}s"


def _epoch(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    svc = services()
    token = svc.settings.admin_token
    assert token  # require_login let us through
    client = request.remote_addr or "-"
    target = request.values.get("next", "")
    if not target.startswith("/console/") or target.startswith("//"):
        target = url_for("console.overview")
    error, status = None, 200
    if request.method == "POST":
        form_csrf = request.form.get("csrf", "")
        if not form_csrf or not auth.token_matches(form_csrf, request.cookies.get(auth.LOGIN_COOKIE, "")):
            abort(403, description="csrf: missing or wrong form token; reload the login page")
        wait = auth.blocked_for(svc.store, client)
        if wait:
            log.warning(
                "console: login refused, too many wrong tokens",
                extra={"client": client, "reason": "console_rate_limited"},
            )
            resp = _login_page("too many wrong tokens; try again later", target, 429)
            resp.headers["Retry-After"] = str(wait)
            return resp
        if auth.token_matches(request.form.get("token", ""), token):
            sid, _ = auth.open_session(svc.store, token, svc.settings.console_idle_s)
            log.info("console: logged in", extra={"client": client})
            ok = redirect(target, code=303)
            auth.set_cookie(ok, request, auth.COOKIE, sid, None)
            ok.delete_cookie(auth.LOGIN_COOKIE, path="/console")
            return ok
        auth.wrong_token(svc.store, client)
        error, status = "wrong token", 401
    return _login_page(error, target, status)


def _login_page(error: str | None, target: str, status: int) -> Response:
    # No session yet, so the form's CSRF value is also set as a cookie and the two must match (double
    # submit): another site can neither read nor send this cookie (SameSite=Strict).
    value = secrets.token_urlsafe(24)
    resp = make_response(
        render_template("console/login.html", error=error, next=target, login_csrf=value), status
    )
    auth.set_cookie(resp, request, auth.LOGIN_COOKIE, value, 3600)
    return resp


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    auth.close_session(services().store, request)
    resp = redirect(url_for("console.login"), code=303)
    resp.delete_cookie(auth.COOKIE, path="/console")
    return resp


@bp.get("/")
def overview() -> str:
    svc = services()
    store = svc.store
    now = time.time()
    oldest = store.oldest_unfinished()
    celery = getattr(svc.queue, "celery", None)
    per_minute = store.settled_per_minute(since=now - 86400, until=now + 60)
    hour = chart.slots(per_minute, until=now, span_s=3600, slot_s=60)
    day = chart.slots(per_minute, until=now, span_s=86400, slot_s=900)
    counts, archived = svc.events.counts()
    return render_template(
        "console/overview.html",
        counts=counts,
        archived=archived,
        archive_down=svc.archive is not None and archived is None,
        outbox=store.outbox_size(),
        queues=queue_lengths(celery) if celery is not None else None,
        oldest_age=_span(now - oldest) if oldest is not None else None,
        hour_chart=chart.layout(hour, title="Settled events per minute, last hour"),
        day_chart=chart.layout(day, title="Settled events per 15 minutes, last day"),
        hour_total=sum(s.total for s in hour),
        day_total=sum(s.total for s in day),
        series=chart.SERIES,
        refresh=10,
    )


def _filters() -> dict[str, Any]:
    """The list's filters from the query string; a bad value is a 400 naming the field."""
    status = request.args.get("status") or None
    if status and status not in STATUSES:
        abort(400, description=f"status: must be one of {', '.join(STATUSES)}")
    return {
        "status": status,
        "type": (request.args.get("type") or "").strip() or None,
        "source": (request.args.get("source") or "").strip() or None,
        "since": (request.args.get("since") or "").strip(),
        "until": (request.args.get("until") or "").strip(),
    }


@bp.get("/events")
def events() -> ResponseReturnValue:
    store = services().store
    query = (request.args.get("q") or "").strip()
    if query:
        found = find_event(store, query) or services().events.find(query)
        if found:
            return redirect(url_for("console.event", event_id=found), code=303)
    f = _filters()
    since, until = parse_time(f["since"], "since"), parse_time(f["until"], "until")
    cursor = _cursor(request.args.get("cursor"))
    docs, next_cursor = merged_page(
        store,
        status=f["status"],
        event_type=f["type"],
        source=f["source"],
        since=since,
        until=until,
        cursor=cursor,
    )
    keep = {k: v for k, v in f.items() if v}
    return render_template(
        "console/events.html",
        events=docs,
        filters=f,
        statuses=STATUSES,
        query=query,
        not_found=bool(query),
        next_url=url_for("console.events", **keep, cursor=next_cursor) if next_cursor else None,
        first_url=url_for("console.events", **keep) if cursor else None,
        replay_url=url_for("console.bulk_replay", **{k: v for k, v in keep.items() if k != "source"}),
    )


def _cursor(value: str | None) -> tuple[float, str] | None:
    if not value:
        return None
    score, sep, event_id = value.partition("_")
    try:
        at = float(score)
    except ValueError:
        at = math.nan
    # NaN would reach Redis as a bound it refuses (a 500): only a finite time is a position.
    if not math.isfinite(at):
        abort(400, description="cursor: not one this page gave; start from the first page")
    return at, event_id if sep else ""


def page_of_events(
    store: EventStore,
    *,
    status: str | None = None,
    event_type: str | None = None,
    source: str | None = None,
    since: float | None = None,
    until: float | None = None,
    cursor: tuple[float, str] | None = None,
    limit: int = PAGE,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of event documents, newest first, after `cursor` (received time, id); and the next cursor.

    The cursor is a position, not an offset: events arriving meanwhile do not shift the pages.
    """
    top = until if cursor is None else (cursor[0] if until is None else min(until, cursor[0]))
    picked: list[tuple[str, float]] = []
    scanned = 0
    last: tuple[float, str] | None = None
    ids = store.iter_ids(status=status, event_type=event_type, since=since, until=top)
    batch: list[str] = []

    def take(batch: list[str]) -> bool:
        nonlocal scanned, last
        pipe = store.r.pipeline(transaction=False)
        for i in batch:
            pipe.hmget(store.key("ev", i), "received_at", "source")
        for i, (received, src) in zip(batch, pipe.execute(), strict=True):
            if received is None:
                continue
            score = float(received)
            # Equal times come in descending id order: skip up to and including the cursor's own id.
            if cursor is not None and score == cursor[0] and i >= cursor[1]:
                continue
            scanned += 1
            last = (score, i)
            if source and (src or b"").decode() != source:
                if scanned >= SCAN_LIMIT:
                    return True
                continue
            picked.append((i, score))
            if len(picked) > limit or scanned >= SCAN_LIMIT:
                return True
        return False

    for event_id in ids:
        batch.append(event_id)
        if len(batch) == 100:
            if take(batch):
                batch = []
                break
            batch = []
    if batch:
        take(batch)
    if len(picked) > limit:
        event_id, score = picked[limit - 1]
        at: tuple[float, str] | None = (score, event_id)
    else:
        at = last if scanned >= SCAN_LIMIT else None
    docs = store.documents([i for i, _ in picked[:limit]])
    return docs, f"{at[0]!r}_{at[1]}" if at else None


def merged_page(
    store: EventStore,
    *,
    status: str | None = None,
    event_type: str | None = None,
    source: str | None = None,
    since: float | None = None,
    until: float | None = None,
    cursor: tuple[float, str] | None = None,
    limit: int = PAGE,
) -> tuple[list[dict[str, Any]], str | None]:
    """page_of_events over both tiers: Redis's page merged with the archive's, by position.

    The archive's rows are taken only above the point where Redis's page stopped (its next cursor), so no
    event of either tier is passed over; an event in both is shown once, from Redis.
    """
    hot_docs, hot_next = page_of_events(
        store,
        status=status,
        event_type=event_type,
        source=source,
        since=since,
        until=until,
        cursor=cursor,
        limit=limit,
    )
    events = services().events
    if events.archive is None:
        return hot_docs, hot_next
    pipe = store.r.pipeline(transaction=False)
    for d in hot_docs:
        pipe.hget(store.key("ev", d["id"]), "received_at")
    hot = [((float(r or 0), d["id"]), d) for d, r in zip(hot_docs, pipe.execute(), strict=True)]
    floor = _cursor(hot_next)
    cold = events.archived(
        status=status,
        event_type=event_type,
        source=source,
        since=since,
        until=until,
        after=cursor,
        limit=limit + 1,
    )
    seen = {i for (_, i), _ in hot}
    cold_rows = [
        ((e.received_at, e.id), archived_document(e))
        for e in cold
        if e.id not in seen and (floor is None or (e.received_at, e.id) > floor)
    ]
    merged = sorted(hot + cold_rows, key=lambda row: row[0], reverse=True)
    if len(merged) > limit:
        at: tuple[float, str] | None = merged[limit - 1][0]
    else:
        at = floor
    docs = [d for _, d in merged[:limit]]
    return docs, f"{at[0]!r}_{at[1]}" if at else None


def find_event(store: EventStore, query: str) -> str | None:
    """Our event id, or the id of the event Voucherify's `event.id` (or send-out id) was stored as."""
    if query.startswith("evt_") and store.r.exists(store.key("ev", query)):
        return query
    # The dedup claims are keyed by (source.id, event.id): look the id up under any source. Claims last the
    # dedup window (DEDUP_WINDOW_SECONDS), so older events are found by our id only.
    pattern = "".join(f"[{c}]" if c in "*?[]\\" else c for c in query)
    for kind in ("ev", "send"):
        for key in store.r.scan_iter(match=store.key("dd", f"{kind}:*:{pattern}"), count=1000):
            found = store.r.get(key)
            if found:
                return found.decode() if isinstance(found, bytes) else str(found)
    return mirror_search(store, query)


def mirror_search(store: EventStore, query: str) -> str | None:
    """With the mirror on: the last event applied to the voucher with this code, or to this customer."""
    mirror = services().mirror
    if mirror is None:
        return None
    try:
        row = mirror.voucher(query) or mirror.customer(query)
    except SQLAlchemyError:
        log.warning("console: the mirror database did not answer", extra={"reason": "mirror_unavailable"})
        return None
    found = (row or {}).get("ingest_event_id")
    return str(found) if found and store.r.exists(store.key("ev", str(found))) else None


def mirror_links(event_id: str) -> list[tuple[str, str]]:
    """(label, console URL) of each mirror row the event touched; none when the mirror is off or away."""
    mirror = services().mirror
    if mirror is None:
        return []
    try:
        touched = mirror.touched_by(event_id)
    except SQLAlchemyError:
        return []
    return [(f"{table[:-1]} {key}", url_for(".mirror_row", table=table, key=key)) for table, key in touched]


@bp.get("/mirror/<any(vouchers, campaigns, customers, publications):table>/<key>")
def mirror_row(table: str, key: str) -> str:
    """One mirrored row with the events that touched it (as `voucherify-ingest mirror` prints it)."""
    mirror = services().mirror
    if mirror is None:
        abort(404, description="the mirror is off: set MIRROR_DATABASE_URL")
    try:
        row = mirror.row(table, key)
    except SQLAlchemyError:
        abort(503, description="the mirror database did not answer")
    if row is None:
        abort(404, description=f"no {table[:-1]} {key} in the mirror")
    pretty = json.dumps(row, indent=2, ensure_ascii=False, default=str)
    return render_template(
        "console/mirror.html", table=table, key=key, row=row, body=mask_email(pretty) or ""
    )


@bp.get("/events/<event_id>")
def event(event_id: str) -> str:
    events = services().events
    doc = events.document(event_id)
    if doc is None:
        abort(404, description=f"no event {event_id}")
    raw = events.raw(event_id) or b""
    reveal = request.args.get("reveal") == "1"
    if reveal:
        log.warning(
            "console: raw body revealed",
            extra={"event_id": event_id, "client": request.remote_addr, "reason": "console_reveal"},
        )
    try:
        pretty = json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except (ValueError, UnicodeDecodeError):
        pretty = raw.decode("utf-8", "replace")
    body = pretty if reveal else (mask_email(pretty) or "")
    return render_template(
        "console/event.html",
        ev=doc,
        body=body,
        masked=not reveal and body != pretty,
        reveal=reveal,
        errors=list(flatten_errors(doc.get("errors"))),
        mirror_links=mirror_links(event_id),
    )


def flatten_errors(errors: Any, path: str = "") -> list[tuple[str, str]]:
    """Marshmallow's nested messages as (field path, message) rows."""
    if errors is None:
        return []
    if isinstance(errors, dict):
        rows: list[tuple[str, str]] = []
        for key, value in errors.items():
            rows += flatten_errors(value, f"{path}.{key}" if path else str(key))
        return rows
    if isinstance(errors, list):
        if all(isinstance(e, str) for e in errors):
            return [(path or "(body)", e) for e in errors]
        rows = []
        for i, value in enumerate(errors):
            rows += flatten_errors(value, f"{path}[{i}]")
        return rows
    return [(path or "(body)", str(errors))]


@bp.post("/events/<event_id>/replay")
def replay(event_id: str) -> ResponseReturnValue:
    svc = services()
    everything = request.form.get("all") == "1"
    if not replay_one(svc.store, svc.queue, event_id, all_actions=everything, archive=svc.archive):
        abort(404, description=f"no event {event_id}")
    log.info("console: replayed one event", extra={"event_id": event_id, "all_actions": everything})
    return redirect(url_for("console.event", event_id=event_id, replayed=1), code=303)


@bp.route("/replay", methods=["GET", "POST"])
def bulk_replay() -> ResponseReturnValue:
    svc = services()
    values = request.form if request.method == "POST" else request.args
    status = values.get("status") or None
    if status and status not in STATUSES:
        abort(400, description=f"status: must be one of {', '.join(STATUSES)}")
    flt = ReplayFilter(
        status=status,
        event_type=(values.get("type") or "").strip() or None,
        since=parse_time((values.get("since") or "").strip(), "since"),
        until=parse_time((values.get("until") or "").strip(), "until"),
    )
    all_actions = values.get("all_actions") == "1"
    if request.method == "POST":
        if values.get("confirm") != "1":
            abort(400, description="confirm: check the count, then confirm the replay")
        if flt == ReplayFilter() and values.get("all") != "1":
            abort(400, description="all: no filter given; confirm a replay of every stored event")
        try:
            job = start_job(svc.store, svc.queue, flt, all_actions=all_actions, archive=svc.archive)
        except JobNotStartedError as exc:
            abort(503, description=f"job {exc} could not be handed to a worker; try again")
        log.info("console: bulk replay started", extra={"job": job["job"], "total": job["total"]})
        return redirect(url_for("console.replay_job", job_id=job["job"]), code=303)
    shown = any(k in request.args for k in ("status", "type", "since", "until"))
    actions, routes_at = would_run_now(svc.store, flt, all_actions=all_actions) if shown else ({}, None)
    return render_template(
        "console/replay.html",
        statuses=STATUSES,
        form={k: values.get(k) or "" for k in ("status", "type", "since", "until")},
        all_actions=all_actions,
        count=count_matching(svc.store, flt, archive=svc.archive) if shown else None,
        actions=actions,
        routes_at=routes_at,
        limit=WOULD_RUN_LIMIT,
        everything=flt == ReplayFilter(),
    )


def would_run_now(
    store: EventStore, flt: ReplayFilter, *, all_actions: bool
) -> tuple[dict[str, int], float | None]:
    """Per action, how many matching events a replay would run it for, by the routes table the workers
    published when they started (the intake never imports their routing); and when it was published."""
    published = store.published_routes()
    if published is None:
        return {}, None
    table, at = published

    def routes(event_type: str) -> tuple[str, ...]:
        # A type missing from the table is one Voucherify added since (no handler names it): only a glob
        # pattern could route it, which the table cannot show.
        return table.get(event_type, (UNLISTED,))

    counts = would_run(store, flt, routes, all_actions=all_actions, limit=WOULD_RUN_LIMIT)
    return dict(sorted(counts.items(), key=lambda kv: (kv[0] in (NOTHING, UNLISTED), kv[0]))), at


UNLISTED = "(type not in the routes table)"


@bp.get("/replay/<job_id>")
def replay_job(job_id: str) -> str:
    job = job_view(services().store, job_id)
    if job is None:
        abort(404, description=f"no replay job {job_id} (jobs are kept 7 days)")
    return render_template(
        "console/job.html", job=job, refresh=None if job["state"] in ("done", "failed") else 2
    )


@bp.app_template_global("console_url")
def console_url(endpoint: str, **values: Any) -> str:
    """url_for for templates, dropping empty values so links stay short."""
    return url_for(endpoint, **{k: v for k, v in values.items() if v not in (None, "")})


@bp.app_template_global("qs")
def qs(**values: Any) -> str:
    """A query string of the non-empty values."""
    return urlencode({k: v for k, v in values.items() if v not in (None, "")})
