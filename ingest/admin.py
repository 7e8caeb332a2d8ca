"""The admin API: read events, replay them. Off (404) unless ADMIN_TOKEN is set; 401 without it."""

from __future__ import annotations

import hmac
import json
import math
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request

from core.queue import REPLAY_QUEUE
from core.replay import (
    JobNotStartedError,
    ReplayFilter,
    count_matching,
    job_view,
    replay_one,
    start_job,
)
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
        abort(400, description=f"status: must be one of {', '.join(STATUSES)}")
    limit = _limit(request.args.get("limit"))
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


# The fields of POST /admin/replay; anything else is refused, so a misspelt filter never widens a replay.
_REPLAY_FIELDS = ("status", "type", "since", "until", "dry_run", "all", "all_actions")


@bp.post("/replay")
def replay_bulk() -> tuple[Response, int] | tuple[Response, int, dict[str, str]]:
    """Count (dry_run) at once, or start a replay job: 202 with the job, to follow at /admin/replay/<job>."""
    svc = services()
    body = _json_body()
    unknown = sorted(k for k in body if k not in _REPLAY_FIELDS)
    if unknown:
        abort(400, description=f"{unknown[0]}: unknown field; the fields are {', '.join(_REPLAY_FIELDS)}")
    status = body.get("status")
    if status is not None and (not isinstance(status, str) or status not in STATUSES):
        abort(400, description=f"status: must be one of {', '.join(STATUSES)}")
    event_type = body.get("type")
    if event_type is not None and not isinstance(event_type, str):
        abort(400, description="type: must be a string")
    dry_run, everything, all_actions = (_flag(body, name) for name in ("dry_run", "all", "all_actions"))
    flt = ReplayFilter(
        status=status or None,
        event_type=event_type or None,
        since=_time(body.get("since"), "since"),
        until=_time(body.get("until"), "until"),
    )
    if dry_run:
        return jsonify(count=count_matching(svc.store, flt), dry_run=True), 200
    if flt == ReplayFilter() and not everything:
        abort(400, description='all: no filter given; send {"all": true} to replay every stored event')
    try:
        job = start_job(svc.store, svc.queue, flt, all_actions=all_actions)
    except JobNotStartedError as exc:
        return (
            jsonify(error="broker_unavailable", message=f"job {exc} could not be handed to a worker"),
            503,
            {"Retry-After": "5"},
        )
    return jsonify(job), 202, {"Location": f"/admin/replay/{job['job']}"}


@bp.get("/replay/<job_id>")
def replay_job(job_id: str) -> Response:
    """A replay job's state, progress (`done` of `total`) and, once done, its final `count`."""
    job = job_view(services().store, job_id)
    if job is None:
        abort(404, description=f"no replay job {job_id} (jobs are kept 7 days)")
    return jsonify(job)


def _json_body() -> dict[str, Any]:
    """The request's JSON object ({} when there is no body); 400 naming `body` for anything else."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    try:
        # Python's json takes NaN and Infinity, which are not JSON: refuse them here, by name.
        body = json.loads(raw, parse_constant=_no_constant)
    except _ConstantError as exc:
        abort(400, description=f"{_field_of(raw, str(exc))}: {exc} is not a JSON number")
    except (ValueError, RecursionError):
        abort(400, description="body: not valid JSON (UTF-8)")
    if not isinstance(body, dict):
        abort(400, description="body: send a JSON object")
    return body


class _ConstantError(ValueError):
    pass


def _no_constant(name: str) -> None:
    raise _ConstantError(name)


def _field_of(raw: bytes, constant: str) -> str:
    """Which field held the NaN/Infinity, for the message (the parser does not say)."""
    text = raw.decode("utf-8", "replace")
    at = text.find(constant)
    key_end = text.rfind('"', 0, at)
    key_start = text.rfind('"', 0, key_end)
    return text[key_start + 1 : key_end] if 0 <= key_start < key_end else "body"


def _flag(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        abort(400, description=f"{name}: must be true or false")
    return value


def _limit(value: str | None) -> int:
    """1 to 1000 events (more is capped at 1000); 50 when not given."""
    if value is None or value == "":
        return 50
    if not value.isdigit() or len(value) > 9 or int(value) < 1:
        abort(400, description="limit: must be a whole number from 1 (at most 1000 are returned)")
    return min(int(value), 1000)


def _time(value: object, name: str) -> float | None:
    """Accept epoch seconds or ISO-8601 (a trailing Z allowed); 400 naming the field for anything else."""
    if value is None or value == "":
        return None
    ts: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            ts = float(value)
        except OverflowError:  # an int too large for a float
            ts = None
    elif isinstance(value, str):
        try:
            ts = float(value)
        except ValueError:
            ts = _iso(value, name)
        except OverflowError:
            ts = None
    else:
        abort(400, description=f"{name}: expected epoch seconds or an ISO-8601 time")
    # NaN, infinities and times past year 9999 mean nothing here (and Redis refuses a NaN bound).
    if ts is None or not math.isfinite(ts) or abs(ts) > _MAX_EPOCH:
        abort(400, description=f"{name}: a time between years 1 and 9999, as epoch seconds or ISO-8601")
    return ts


_MAX_EPOCH = 253402300799.0  # 9999-12-31T23:59:59Z


def _iso(value: str, name: str) -> float:
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        abort(400, description=f"{name}: expected epoch seconds or an ISO-8601 time")
    if dt.tzinfo is None:
        abort(400, description=f"{name}: give a time zone (e.g. a trailing Z)")
    try:
        return dt.timestamp()
    except (OverflowError, ValueError):
        abort(400, description=f"{name}: a time between years 1 and 9999")
