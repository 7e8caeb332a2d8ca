"""Processing one event: plain functions that take ids and collaborators, testable without Celery.

load raw -> parse JSON -> envelope + data schema -> route on event.type -> run each due action -> status.

Every step is idempotent, because Celery delivers at least once and the reconciler re-sends what looks
stuck: a terminal event is left alone, an action that succeeded is not run again, and each action guards
its own side effect with a business-key reservation.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from core.logs import log_context
from core.settings import Settings
from core.store import TERMINAL, Done, EventStore, StoredEvent
from schemas import ParsedEvent, ValidationError, parse_event
from workers import dispatch
from workers.actions import Action, ActionContext
from workers.errors import DesignerPayloadError, InvalidPayloadError, PermanentError, TransientError

log = logging.getLogger("workers.pipeline")

# An event whose worker keeps dying (poison input, OOM) stops being handed out after this many starts.
MAX_EVENT_STARTS = 10
_HISTORY = 50

ActionStates = dict[str, dict[str, Any]]  # action name -> its state, as stored


@dataclass
class Runtime:
    """The collaborators of the pipeline, built once per worker process."""

    settings: Settings
    store: EventStore
    actions: Mapping[str, Action]
    clock: Callable[[], float] = time.time
    rng: Callable[[], float] = random.random


def parse(raw: bytes) -> ParsedEvent:
    """Raw bytes to a validated event, or InvalidPayloadError with field-keyed messages.

    A JSON object with no `event` envelope, or a valid envelope whose `data` fails its schema, raises the
    DesignerPayloadError subclass: that is what a distribution's Payload designer sends.
    """
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidPayloadError(
            "body is not JSON", {"_schema": [f"Body is not valid JSON: {exc}"]}, reason="not_json"
        ) from exc
    try:
        return parse_event(payload)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        if isinstance(payload, dict) and (
            not isinstance(payload.get("event"), dict) or set(messages) == {"data"}
        ):
            raise DesignerPayloadError("not a standard event body", messages) from exc
        raise InvalidPayloadError("event failed validation", messages, reason="schema") from exc


def process_event(event_id: str, rt: Runtime) -> str:
    """Process one stored event; return its status afterwards."""
    now = rt.clock()
    loaded = rt.store.begin(event_id, now=now, max_starts=MAX_EVENT_STARTS)
    if loaded is None:
        log.warning("event not found (expired or never stored)", extra={"event_id": event_id})
        return "missing"
    ev, states, started = loaded
    if ev.status in TERMINAL:
        return ev.status  # a redelivered message for work already finished
    # Only starts that never finished count: a run that ends by scheduling an action's retry is fine.
    if not started:
        rt.store.set_status(
            event_id,
            "dead",
            outbox=False,
            now=now,
            reason="too_many_starts",
            errors=json.dumps(
                {
                    "_worker": [
                        f"processing started {ev.unfinished_starts} times without finishing "
                        "(worker lost each time)"
                    ]
                }
            ),
        )
        log.error("event dead: too many starts", extra={"event_id": event_id, "starts": ev.unfinished_starts})
        return "dead"
    try:
        parsed = parse(ev.raw)
    except DesignerPayloadError as exc:
        if ev.source:
            return run_designer(ev, exc, rt, states)
        # Project-settings webhooks cannot be reshaped: on the main URL this is a defect.
        return _invalid(ev, exc, rt)
    except InvalidPayloadError as exc:
        return _invalid(ev, exc, rt)
    return run_actions(ev, parsed, rt, states)


def _invalid(ev: StoredEvent, exc: InvalidPayloadError, rt: Runtime) -> str:
    rt.store.set_status(
        ev.id,
        "invalid",
        outbox=False,
        reason=exc.reason,
        errors=json.dumps(exc.messages),
        unfinished_starts=0,
    )
    log.info("event invalid", extra={"event_id": ev.id, "reason": exc.reason})
    return "invalid"


def run_designer(ev: StoredEvent, exc: DesignerPayloadError, rt: Runtime, states: ActionStates) -> str:
    """A Payload-designer body from a distribution endpoint: forwarded where configured, else ignored."""
    names = dispatch.designer_actions_for(ev.source, rt.settings)
    if not names:
        rt.store.set_status(
            ev.id,
            "ignored",
            outbox=False,
            reason=exc.reason,
            errors=json.dumps(exc.messages),
            unfinished_starts=0,
        )
        log.info("event ignored", extra={"event_id": ev.id, "source": ev.source, "reason": exc.reason})
        return "ignored"
    return _run(ev, None, _designer_type(ev.raw), names, rt, states)


def _designer_type(raw: bytes) -> str:
    try:
        event = json.loads(raw).get("event")
        return event["type"] if isinstance(event, dict) and isinstance(event.get("type"), str) else ""
    except (ValueError, AttributeError):
        return ""


def run_actions(ev: StoredEvent, parsed: ParsedEvent, rt: Runtime, states: ActionStates) -> str:
    """Route a validated event and run its due actions."""
    event_type = parsed.event_type
    names = dispatch.actions_for(event_type, rt.settings)
    if not names:
        reason = "no_route" if parsed.schema else "unknown_type"
        rt.store.set_status(
            ev.id, "ignored", outbox=False, event_type=event_type, reason=reason, unfinished_starts=0
        )
        log.info("event ignored", extra={"event_id": ev.id, "event_type": event_type, "reason": reason})
        return "ignored"
    return _run(ev, parsed, event_type, names, rt, states)


def _run(
    ev: StoredEvent,
    parsed: ParsedEvent | None,
    event_type: str,
    names: tuple[str, ...],
    rt: Runtime,
    states: ActionStates,
) -> str:
    """Run the due ones of `names` and set the event's status from theirs."""
    ctx_log = {"event_id": ev.id, "event_type": event_type}
    # An attempt's outcome (its state, its metrics count, the side effects it recorded) is written with the
    # event's status: after the last action, so a one-action event settles in one round trip; and, with
    # several actions, before the next one runs (still `processing`): a crash there must not lose it.
    unwritten: dict[str, dict[str, Any]] = {}
    effects: list[Done] = []
    for name in names:
        state = states.get(name) or {"status": "pending", "attempts": 0, "history": []}
        if state["status"] in ("succeeded", "skipped", "dead"):
            continue
        if (state.get("next_attempt_at") or 0) > rt.clock():
            continue
        if unwritten:
            rt.store.set_status(ev.id, "processing", actions=unwritten, done=effects)
            unwritten, effects = {}, []
        action = rt.actions.get(name)
        if action is None:
            state = _record(state, rt, "dead", f"no action named {name} is configured", "unconfigured")
        else:
            state = run_action(ev, parsed, event_type, name, action, state, rt, effects)
        unwritten[name] = states[name] = state

    status, due = _event_status([states[n] for n in names if n in states])
    outbox: float | bool = False if status != "failed" else (due or rt.clock()) + 0.001
    reason = next((s.get("reason") for s in states.values() if s["status"] in ("dead", "failed")), "")
    rt.store.set_status(
        ev.id,
        status,
        outbox=outbox,
        actions=unwritten,
        done=effects,
        event_type=event_type,
        reason=reason or "",
        unfinished_starts=0,
    )
    log.info(
        "event %s",
        status,
        extra={
            **ctx_log,
            "status": status,
            "actions": {n: states[n]["status"] for n in names if n in states},
        },
    )
    return status


def run_action(
    ev: StoredEvent,
    parsed: ParsedEvent | None,
    event_type: str,
    name: str,
    action: Action,
    state: dict[str, Any],
    rt: Runtime,
    effects: list[Done] | None = None,
) -> dict[str, Any]:
    """One attempt of one action; returns its new state.

    The side effects it records go to `effects`, for the caller to write with that state; without a list,
    they are written as they happen.
    """
    now = rt.clock()
    state = {**state, "first_attempt_at": state.get("first_attempt_at") or now}
    ctx = ActionContext(
        event_id=ev.id,
        attempt_id=f"{ev.id}:{name}:{secrets.token_hex(6)}",
        parsed=parsed,
        raw=ev.raw,
        store=rt.store,
        event_type=event_type,
        effects=effects,
    )
    extra = {"event_id": ev.id, "event_type": event_type, "action": name}
    started = time.perf_counter()
    try:
        # Bound, so the lines an action logs itself (the mailer's, say) say which event and action they are.
        with log_context(**extra):
            result = action(ctx)
    except PermanentError as exc:
        log.warning("action failed permanently", extra={**extra, "reason": exc.reason, "error": str(exc)})
        return _record(state, rt, "dead", str(exc), exc.reason, started)
    except TransientError as exc:
        return _retry_or_die(state, rt, str(exc), exc.reason, exc.retry_after, extra, started)
    except Exception as exc:
        log.exception("action raised an unexpected error", extra={**extra, "reason": "unexpected"})
        detail = "".join(traceback.format_exception_only(exc)).strip()
        return _retry_or_die(state, rt, detail, "unexpected", None, extra, started)
    log.info("action %s", result.status, extra={**extra, "detail": result.detail})
    return _record(state, rt, result.status, None, None, started, detail=result.detail)


def backoff(attempt: int, rt: Runtime) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**(attempt-1))]."""
    ceiling = min(
        rt.settings.action_backoff_cap_s, rt.settings.action_backoff_base_s * 2 ** max(attempt - 1, 0)
    )
    return rt.rng() * ceiling


def _retry_or_die(
    state: dict[str, Any],
    rt: Runtime,
    error: str,
    reason: str,
    retry_after: float | None,
    extra: dict[str, Any],
    started: float,
) -> dict[str, Any]:
    attempts = int(state.get("attempts", 0)) + 1
    age = rt.clock() - state["first_attempt_at"]
    if attempts >= rt.settings.action_max_attempts or age >= rt.settings.action_max_age_s:
        log.error("action gave up", extra={**extra, "reason": reason, "attempts": attempts, "error": error})
        return _record(state, rt, "dead", error, reason, started)
    delay = backoff(attempts, rt)
    if retry_after is not None:
        delay = max(delay, min(retry_after, rt.settings.action_backoff_cap_s))
    log.warning(
        "action will retry",
        extra={
            **extra,
            "reason": reason,
            "attempts": attempts,
            "retry_in_s": round(delay, 3),
            "error": error,
        },
    )
    new = _record(state, rt, "failed", error, reason, started)
    new["next_attempt_at"] = rt.clock() + delay
    return new


def _record(
    state: dict[str, Any],
    rt: Runtime,
    status: str,
    error: str | None,
    reason: str | None,
    started: float | None = None,
    *,
    detail: str | None = None,
) -> dict[str, Any]:
    now = rt.clock()
    entry: dict[str, Any] = {"at": now, "outcome": status}
    if error:
        entry["error"] = error[:500]
    if detail:
        entry["detail"] = detail
    if started is not None:
        entry["ms"] = round((time.perf_counter() - started) * 1000, 1)
    history = [*state.get("history", []), entry][-_HISTORY:]
    return {
        **state,
        "status": status,
        "attempts": int(state.get("attempts", 0)) + 1,
        "last_error": error[:500] if error else state.get("last_error"),
        "reason": reason if status in ("failed", "dead") else (detail or None),
        "next_attempt_at": None,
        "history": history,
    }


def _event_status(states: list[dict[str, Any]]) -> tuple[str, float | None]:
    # Still retrying wins over gave up: the event stays scheduled until every action has settled.
    statuses = {s["status"] for s in states}
    if statuses & {"failed", "pending", "running"}:
        due = [s["next_attempt_at"] for s in states if s["status"] == "failed" and s.get("next_attempt_at")]
        return "failed", min(due) if due else None
    if "dead" in statuses:
        return "dead", None
    return "processed", None
