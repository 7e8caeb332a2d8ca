"""The admin API: read events, replay them. Off (404) unless ADMIN_TOKEN is set; 401 without it."""

from __future__ import annotations

import hmac
import json
import re
from datetime import UTC, datetime
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
from core.states import Status
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
    # A misspelt filter (?stauts=dead) must not be read as no filter at all.
    allowed = _QUERY.get(request.endpoint or "", ())
    unknown = sorted(k for k in request.args if k not in allowed)
    if unknown:
        known = f"the parameters are {', '.join(allowed)}" if allowed else "this route takes none"
        abort(400, description=f"{unknown[0]}: unknown query parameter; {known}")


# The query parameters each admin route reads.
_QUERY = {
    "admin.list_events": ("status", "type", "since", "until", "limit"),
    "admin.replay_event": ("all",),
}


@bp.get("/events")
def list_events() -> Response:
    status = request.args.get("status") or None
    if status and status not in STATUSES:
        abort(400, description=f"status: must be one of {', '.join(STATUSES)}")
    limit = _limit(request.args.get("limit"))
    events = services().events.list_events(
        status=status,
        event_type=request.args.get("type") or None,
        since=parse_time(request.args.get("since"), "since"),
        until=parse_time(request.args.get("until"), "until"),
        limit=limit,
    )
    return jsonify(events=events)


@bp.get("/events/<event_id>")
def show_event(event_id: str) -> Response:
    doc = services().events.document(event_id)
    if doc is None:
        abort(404, description=f"no event {event_id}")
    return jsonify(doc)


@bp.post("/events/<event_id>/replay")
def replay_event(event_id: str) -> tuple[Response, int]:
    svc = services()
    everything = request.args.get("all", "") in ("1", "true", "yes")
    if not replay_one(svc.store, svc.queue, event_id, all_actions=everything, archive=svc.archive):
        abort(404, description=f"no event {event_id}")
    return jsonify(id=event_id, status=Status.QUEUED, queue=REPLAY_QUEUE), 202


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
        since=parse_time(body.get("since"), "since"),
        until=parse_time(body.get("until"), "until"),
    )
    if dry_run:
        return jsonify(count=count_matching(svc.store, flt, archive=svc.archive), dry_run=True), 200
    if flt == ReplayFilter() and not everything:
        abort(400, description='all: no filter given; send {"all": true} to replay every stored event')
    try:
        job = start_job(svc.store, svc.queue, flt, all_actions=all_actions, archive=svc.archive)
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
    # ASCII digits only (str.isdigit also takes "²", which int() refuses); any length, so no int() of a
    # huge string: past 4 significant digits it is more than the cap anyway.
    digits = value.lstrip("0")
    if not (value.isascii() and value.isdigit()) or not digits:
        abort(400, description="limit: must be a whole number from 1 (at most 1000 are returned)")
    return 1000 if len(digits) > 4 else min(int(digits), 1000)


@bp.get("/mirror/vouchers/<code>")
def mirror_voucher(code: str) -> Response:
    return _mirror_row("voucher", code)


@bp.get("/mirror/campaigns/<campaign_id>")
def mirror_campaign(campaign_id: str) -> Response:
    return _mirror_row("campaign", campaign_id)


@bp.get("/mirror/customers/<customer_id>")
def mirror_customer(customer_id: str) -> Response:
    return _mirror_row("customer", customer_id)


def _mirror_row(what: str, key: str) -> Response:
    """A mirrored row with its history (the same JSON as `voucherify-ingest mirror <what> <key>`)."""
    from sqlalchemy.exc import DBAPIError

    mirror = services().mirror
    if mirror is None:
        abort(404, description="the mirror is off: set MIRROR_DATABASE_URL")
    try:
        row = {"voucher": mirror.voucher, "campaign": mirror.campaign, "customer": mirror.customer}[what](key)
    except DBAPIError as exc:
        # Not the caller's fault, and not a crash: say what is missing (an unmigrated database shows here).
        abort(503, description=f"the mirror database did not answer: {type(exc.orig).__name__}")
    if row is None:
        abort(404, description=f"no {what} {key} in the mirror")
    return jsonify(row)


def parse_time(value: object, name: str) -> float | None:
    """A time filter as the admin API (and the console's forms) read it: epoch seconds (years 1 to 9999) or
    an RFC 3339 / ISO-8601 time with a zone; 400 naming the field."""
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
            return _iso(value, name)
        except OverflowError:
            ts = None
    else:
        abort(400, description=f"{name}: expected epoch seconds or an ISO-8601 time")
    # NaN and infinities mean nothing here (and Redis refuses a NaN bound); outside years 1-9999 a bound
    # cannot be shown as a time (a replay job shows its filter).
    if ts is None or not _MIN_EPOCH <= ts <= _MAX_EPOCH:
        abort(400, description=f"{name}: a time within years 1 to 9999, as epoch seconds or ISO-8601")
    return ts


_MIN_EPOCH = -62135596800.0  # 0001-01-01T00:00:00Z
_MAX_EPOCH = 253402300799.0  # 9999-12-31T23:59:59Z
# RFC 3339 date-time (JSON Schema's "date-time"): Python's fromisoformat refuses some valid ones (a
# lower-case t or z, a leap second, year 0), so those are read here.
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(\.\d+)?(?:([Zz])|([+-])(\d\d):(\d\d))",
    re.ASCII,
)


def _iso(value: str, name: str) -> float:
    """An RFC 3339 time, or any ISO-8601 time with a zone, as epoch seconds within years 1 to 9999."""
    if m := _RFC3339.fullmatch(value):
        y, mo, d, h, mi, sec = (int(g) for g in m.groups()[:6])
        oh, om = (0, 0) if m[8] else (int(m[10]), int(m[11]))
        if not (
            1 <= mo <= 12 and 1 <= d <= _days_in_month(y, mo) and h < 24 and mi < 60 and sec <= 60
        ) or not (oh < 24 and om < 60):
            abort(400, description=f"{name}: not a valid date and time")
        offset = (oh * 3600 + om * 60) * (-1 if m[9] == "-" else 1)
        ts = float(_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset)
        ts += float(m[7]) if m[7] else 0.0
    else:
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            abort(400, description=f"{name}: expected epoch seconds or an ISO-8601 time")
        if dt.tzinfo is None:
            abort(400, description=f"{name}: give a time zone (e.g. a trailing Z)")
        # Subtracting aware datetimes cannot overflow the way .timestamp() can near year 9999.
        ts = (dt - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
    # A time just outside years 1-9999 once in UTC is as good as the first or last time there is.
    return min(max(ts, _MIN_EPOCH), _MAX_EPOCH)


def _days_in_month(y: int, m: int) -> int:
    if m == 2:
        return 29 if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else 28
    return 30 if m in (4, 6, 9, 11) else 31


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date, year 0 included (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468
