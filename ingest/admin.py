"""The admin API: read events, replay them. Off (404) unless ADMIN_TOKEN is set; 401 without it."""

from __future__ import annotations

import hmac
from datetime import datetime

from flask import Blueprint, Response, abort, jsonify, request

from core.queue import REPLAY_QUEUE
from core.replay import ReplayFilter, replay_many, replay_one
from core.store import STATUSES
from ingest.services import services

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def require_token() -> None:
    token = services().settings.admin_token
    if not token:
        abort(404)
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
        abort(401, description="send Authorization: Bearer <ADMIN_TOKEN>")


@bp.get("/events")
def list_events() -> Response:
    status = request.args.get("status") or None
    if status and status not in STATUSES:
        abort(400, description=f"status must be one of {', '.join(STATUSES)}")
    try:
        limit = min(max(int(request.args.get("limit", 50)), 1), 1000)
    except ValueError:
        abort(400, description="limit must be a whole number")
    events = services().store.list_events(
        status=status,
        event_type=request.args.get("type") or None,
        since=_time(request.args.get("since"), "since"),
        until=_time(request.args.get("until"), "until"),
        limit=limit,
    )
    return jsonify(events=events)


@bp.get("/events/<event_id>")
def show_event(event_id: str) -> Response:
    doc = services().store.document(event_id)
    if doc is None:
        abort(404, description=f"no event {event_id}")
    return jsonify(doc)


@bp.post("/events/<event_id>/replay")
def replay_event(event_id: str) -> tuple[Response, int]:
    svc = services()
    everything = request.args.get("all", "") in ("1", "true", "yes")
    if not replay_one(svc.store, svc.queue, event_id, all_actions=everything):
        abort(404, description=f"no event {event_id}")
    return jsonify(id=event_id, status="queued", queue=REPLAY_QUEUE), 202


@bp.post("/replay")
def replay_bulk() -> Response:
    svc = services()
    body = request.get_json(silent=True)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        abort(400, description="send a JSON object: {status, type, since, until, dry_run}")
    status = body.get("status")
    if status is not None and status not in STATUSES:
        abort(400, description=f"status must be one of {', '.join(STATUSES)}")
    event_type = body.get("type")
    if event_type is not None and not isinstance(event_type, str):
        abort(400, description="type must be a string")
    flt = ReplayFilter(
        status=status,
        event_type=event_type,
        since=_time(body.get("since"), "since"),
        until=_time(body.get("until"), "until"),
    )
    count = replay_many(svc.store, svc.queue, flt, dry_run=bool(body.get("dry_run")))
    return jsonify(count=count, dry_run=bool(body.get("dry_run")))


def _time(value: object, name: str) -> float | None:
    """Accept epoch seconds or ISO-8601 (a trailing Z allowed)."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if dt.tzinfo is None:
                abort(400, description=f"{name}: give a time zone (e.g. a trailing Z)")
            return dt.timestamp()
    abort(400, description=f"{name}: expected epoch seconds or an ISO-8601 time")
