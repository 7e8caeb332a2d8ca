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
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC
from typing import Any, cast

from core import jsonguard, logs
from core.logs import log_context
from core.queue import PROCESS_EVENT
from core.settings import Settings
from core.states import TERMINAL, ActionState, ActionStatus, Status
from core.store import Begun, Done, EventStore, Settle, Start, StoredEvent
from schemas import ParsedEvent, ValidationError, parse_event
from workers import dispatch
from workers.actions import Action, ActionContext, ActionLimits, ActionResult, BatchAction
from workers.errors import DesignerPayloadError, InvalidPayloadError, PermanentError, TransientError
from workers.handlers import HandlerSpec

log = logging.getLogger("workers.pipeline")

# An event whose worker keeps dying (poison input, OOM) stops being handed out after this many starts.
MAX_EVENT_STARTS = 10
_HISTORY = 50

ActionStates = dict[str, ActionState]  # action name -> its state


@dataclass
class Runtime:
    """The collaborators of the pipeline, built once per worker process."""

    settings: Settings
    store: EventStore
    actions: Mapping[str, Action]
    # Users' handlers (HANDLERS), for routing; their actions are in `actions` under the same names.
    handlers: tuple[HandlerSpec, ...] = ()
    clock: Callable[[], float] = time.time
    rng: Callable[[], float] = random.random
    # Inside a batch (process_batch): outcomes not yet written, each with its log line; None writes at once.
    pending: list[tuple[Settle, Callable[[], None]]] | None = None


def parse(raw: bytes) -> ParsedEvent:
    """Raw bytes to a validated event, or InvalidPayloadError with field-keyed messages.

    A JSON object with no `event` envelope, or a valid envelope whose `data` fails its schema, raises the
    DesignerPayloadError subclass: that is what a distribution's Payload designer sends.
    """
    try:
        payload = jsonguard.loads(raw)
    except jsonguard.TooDeepError as exc:
        # Checked before parsing: json and Marshmallow would recurse once per level (RecursionError).
        raise InvalidPayloadError(
            "body nested too deeply", {"_schema": [str(exc)]}, reason="too_deep"
        ) from exc
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


def process_event(event_id: str, rt: Runtime, *, message_id: str = "", queue: str = "") -> str:
    """Process one stored event, handed over as `message_id` on `queue`; return its status afterwards."""
    now = rt.clock()
    loaded = rt.store.begin(
        event_id, now=now, max_starts=MAX_EVENT_STARTS, message_id=message_id, queue=queue
    )
    step = _prepare(event_id, loaded, rt, now=now, message_id=message_id)
    return step if isinstance(step, str) else _run(step, rt)


@dataclass(frozen=True)
class Delivery:
    """One message of a batch: the event it hands over, its id and the queue it came from."""

    event_id: str
    message_id: str = ""
    queue: str = ""


def process_batch(deliveries: Sequence[Delivery], rt: Runtime) -> list[str]:
    """Process a batch of stored events as process_event does each; return each one's status afterwards.

    The batch begins in one store round trip and settles in one, with the events' own outcomes: an event's
    failure (bad payload, failing action, a handler's exception) is its own. An outcome that records side
    effects (an email sent, say) is written at once, with those waiting, never held back for the batch:
    a crash must not lose the record of a side effect that happened. An event whose processing raised
    comes back as "error": it was begun, so its outbox lease brings it back, as for a single event.
    """
    rt = replace(rt, pending=[])
    now = rt.clock()
    # Two messages for one event (a reconciler's hand-off and the first one, say) run it once: one after the
    # other, the second would have found it finished.
    first: dict[str, int] = {}
    for i, d in enumerate(deliveries):
        first.setdefault(d.event_id, i)
    unique = [deliveries[i] for i in first.values()]
    starts = [(d.event_id, d.message_id, d.queue) for d in unique]
    begun = rt.store.begin_many(starts, now=now, max_starts=MAX_EVENT_STARTS)
    out: list[str] = ["error"] * len(deliveries)
    works: list[tuple[int, Work]] = []
    for i, d, loaded in zip(first.values(), unique, begun, strict=True):
        with _event_context(d):
            try:
                step = _prepare(d.event_id, loaded, rt, now=now, message_id=d.message_id)
            except Exception:
                log.exception("event raised an unexpected error", extra={"reason": "unexpected"})
                continue
        if isinstance(step, str):
            out[i] = step
        else:
            step.message_id = d.message_id
            works.append((i, step))
    _run_batch_actions([w for _, w in works], rt)
    for i, work in works:
        with _event_context(deliveries[i]):
            try:
                out[i] = _run(work, rt)
            except Exception:
                log.exception("event raised an unexpected error", extra={"reason": "unexpected"})
    write_pending(rt)
    return [out[first[d.event_id]] for d in deliveries]


@contextmanager
def _event_context(d: Delivery) -> Iterator[None]:
    # What the task_prerun signal binds for a single message: each event of a batch logs as its own task.
    with log_context(task_id=d.message_id or None, task=PROCESS_EVENT, event_id=d.event_id):
        yield


def _prepare(event_id: str, loaded: Begun | None, rt: Runtime, *, now: float, message_id: str) -> str | Work:
    """What begin() gave, up to the actions: a status if that settled the event, else the actions' Work."""
    if loaded is None:
        log.warning("event not found (expired or never stored)", extra={"event_id": event_id})
        return "missing"
    ev, states, verdict = loaded
    if ev.status in TERMINAL:
        return ev.status  # a redelivered message for work already finished
    if verdict == Start.SUPERSEDED:
        # The reconciler replaced this message, or a start since made it redundant: the outbox still
        # holds the event, so running it here would only be a second, concurrent run.
        log.info("superseded hand-off dropped", extra={"event_id": event_id, "message_id": message_id})
        return "superseded"
    # Only starts that never finished count: a run that ends by scheduling an action's retry is fine.
    if verdict != Start.STARTED:
        errors = {
            "_worker": [
                f"processing started {ev.unfinished_starts} times without finishing (worker lost each time)"
            ]
        }
        return settle(rt, ev, Status.DEAD, reason="too_many_starts", errors=errors, finished=False, now=now)
    try:
        parsed = parse(ev.raw)
    except DesignerPayloadError as exc:
        source = ev.source or _body_source(ev.raw)
        if source is None:
            # Project-settings webhooks are never reshaped: on the main URL this is a defect.
            return settle(rt, ev, Status.INVALID, reason=exc.reason, errors=exc.messages)
        return run_designer(ev, exc, rt, states, source=source)
    except InvalidPayloadError as exc:
        return settle(rt, ev, Status.INVALID, reason=exc.reason, errors=exc.messages)
    flag_late(ev, parsed, rt)
    return run_actions(ev, parsed, rt, states)


def flag_late(ev: StoredEvent, parsed: ParsedEvent, rt: Runtime) -> bool:
    """Flag (and count) a delivery whose signed event.created_at is older than the dedup window.

    Such a delivery is no retry of Voucherify's (those end within ~1.5 days): it is a send-out re-sent from
    the audit log after an outage, or a captured one replayed. It is processed all the same, since it may
    be real; every action's own memory (an email per publication, a forward per event id) stops a repeat.
    """
    created = parsed.envelope.event.created_at
    if created is None:
        return False
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    if created.timestamp() >= rt.clock() - rt.settings.dedup_window_s:
        return False
    if rt.store.mark_late(ev.id):
        log.info("late delivery", extra={"event_id": ev.id, "event_created_at": created.isoformat()})
    return True


def settle(
    rt: Runtime,
    ev: StoredEvent,
    status: Status,
    *,
    reason: str = "",
    errors: object = None,
    event_type: str | None = None,
    actions: Mapping[str, ActionState] | None = None,
    effects: Sequence[Done] = (),
    due: float | None = None,
    shown: Mapping[str, ActionState] | None = None,
    finished: bool = True,
    now: float | None = None,
) -> str:
    """Write an event's outcome: the one place a run of the pipeline ends.

    One atomic store write carries the status, why, the last actions' states, the side effects they
    recorded, and the outbox entry: removed, or for `failed`, due at the earliest retry (`due`). `shown`
    are the states of every routed action, for the log line.
    """
    fields: dict[str, str | int | float] = {"reason": reason}
    if errors is not None:
        fields["errors"] = json.dumps(errors)
    if event_type is not None:
        fields["event_type"] = event_type
    if finished:
        fields["unfinished_starts"] = 0
    outbox: float | bool = False if status != Status.FAILED else (due or rt.clock()) + 0.001
    extra: dict[str, Any] = {"event_id": ev.id, "status": str(status)}
    if event_type or ev.event_type:
        extra["event_type"] = event_type or ev.event_type
    if reason:
        extra["reason"] = reason
    if shown is not None:
        extra["actions"] = {n: str(a.status) for n, a in shown.items()}

    def say() -> None:
        if status == Status.DEAD and reason == "too_many_starts":
            log.error("event dead: too many starts", extra={**extra, "starts": ev.unfinished_starts})
        else:
            log.info("event %s", status, extra=extra)

    if rt.pending is None:
        rt.store.set_status(ev.id, status, outbox=outbox, now=now, actions=actions, done=effects, **fields)
        say()
        return str(status)
    entry = Settle(ev.id, status, outbox=outbox, now=now, actions=actions, done=tuple(effects), fields=fields)
    bound = logs.bound()

    def say_bound() -> None:
        with log_context(**bound):
            say()

    rt.pending.append((entry, say_bound))
    if effects:
        write_pending(rt)
    return str(status)


def write_pending(rt: Runtime) -> None:
    """Write a batch's outcomes not written yet, in one round trip, then log them."""
    if not rt.pending:
        return
    pending, rt.pending[:] = list(rt.pending), []
    rt.store.settle_many([entry for entry, _ in pending])
    for _, say in pending:
        say()


def _body_source(raw: bytes) -> str | None:
    """The `source.id` of a body that says it comes from a distribution, else None.

    Only that claim routes a Payload-designer body on the main URL: a project-settings webhook is never
    reshaped, and a body that says nothing of itself (no envelope) stays a defect there.
    """
    try:
        doc = jsonguard.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    source = doc.get("source") if isinstance(doc, dict) else None
    if not isinstance(source, dict) or source.get("object") != "distribution":
        return None
    ident = source.get("id")
    return ident if isinstance(ident, str) and ident else None


def run_designer(
    ev: StoredEvent, exc: DesignerPayloadError, rt: Runtime, states: ActionStates, *, source: str = ""
) -> str | Work:
    """A Payload-designer body (from a distribution endpoint, or a distribution's body on the main URL,
    known by its `source.id`): forwarded where configured, else ignored."""
    names = dispatch.designer_actions_for(source or ev.source, rt.settings)
    if not names:
        return settle(rt, ev, Status.IGNORED, reason=exc.reason, errors=exc.messages)
    return Work(ev, None, _designer_type(ev.raw), names=names, states=states)


def _designer_type(raw: bytes) -> str:
    try:
        event = jsonguard.loads(raw).get("event")
        return event["type"] if isinstance(event, dict) and isinstance(event.get("type"), str) else ""
    except (ValueError, UnicodeDecodeError, AttributeError):
        return ""


def run_actions(ev: StoredEvent, parsed: ParsedEvent, rt: Runtime, states: ActionStates) -> str | Work:
    """Route a validated event: its status if nothing routes it, else the Work of its actions."""
    event_type = parsed.event_type
    names = dispatch.actions_for(event_type, rt.settings, rt.handlers)
    if not names:
        reason = dispatch.ignore_reason(event_type)
        return settle(rt, ev, Status.IGNORED, reason=reason, event_type=event_type)
    return Work(ev, parsed, event_type, names=names, states=states)


@dataclass
class Work:
    """One run of one event's actions: what every attempt in it shares."""

    ev: StoredEvent
    parsed: ParsedEvent | None  # None for a Payload-designer body (forwards only)
    event_type: str
    names: tuple[str, ...] = ()  # the routed actions, in order
    states: ActionStates = field(default_factory=dict)
    # Side effects the attempts recorded, written with the next store write (their action's state).
    effects: list[Done] = field(default_factory=list)
    # Attempts a batch action made already (run_batch), by action name: their context, outcome, start time.
    ran: dict[str, tuple[ActionContext, ActionResult | Exception, float]] = field(default_factory=dict)
    message_id: str = ""  # the message that carried the event (its log lines' task_id)


def _run(work: Work, rt: Runtime) -> str:
    """Run the due ones of the work's actions and settle the event from their states."""
    names, states = work.names, work.states
    # An attempt's outcome (its state, its metrics count, the side effects it recorded) is written with the
    # event's status: after the last action, so a one-action event settles in one round trip; and, with
    # several actions, before the next one runs (still `processing`): a crash there must not lose it.
    unwritten: dict[str, ActionState] = {}
    for name in names:
        state = states.get(name) or ActionState()
        if not _due(state, rt):
            continue
        if unwritten:
            rt.store.set_status(work.ev.id, Status.PROCESSING, actions=unwritten, done=work.effects)
            unwritten, work.effects = {}, []
        action = rt.actions.get(name)
        if action is None:
            error = f"no action named {name} is configured"
            state = _record(state, rt, ActionStatus.DEAD, error=error, reason="unconfigured")
        else:
            state = run_action(work, name, action, state, rt)
        unwritten[name] = states[name] = state

    routed = {n: states[n] for n in names if n in states}
    status, due = _event_status(list(routed.values()))
    reason = next((s.reason for s in states.values() if s.status in _FAILING and s.reason), "")
    return settle(
        rt,
        work.ev,
        status,
        reason=reason,
        event_type=work.event_type,
        actions=unwritten,
        effects=work.effects,
        due=due,
        shown=routed,
    )


def _due(state: ActionState, rt: Runtime) -> bool:
    return not state.settled and (state.next_attempt_at or 0) <= rt.clock()


def _context(work: Work, name: str, rt: Runtime) -> ActionContext:
    return ActionContext(
        event_id=work.ev.id,
        attempt_id=f"{work.ev.id}:{name}:{secrets.token_hex(6)}",
        parsed=work.parsed,
        raw=work.ev.raw,
        store=rt.store,
        event_type=work.event_type,
        effects=work.effects,
        log_fields={
            "task_id": work.message_id or None,
            "task": PROCESS_EVENT,
            "event_id": work.ev.id,
            "event_type": work.event_type,
            "action": name,
        },
    )


def _run_batch_actions(works: Sequence[Work], rt: Runtime) -> None:
    """Each batch-capable action (one with run_batch) once for every event of the batch it is due for.

    The outcomes wait in each Work's `ran` for _run, which records them where it would have called the
    action: each event's attempt keeps its own context, effects, state and log lines. A run_batch that
    raises is the outcome of every attempt in it.
    """
    groups: dict[str, list[tuple[Work, ActionContext]]] = {}
    for work in works:
        for name in work.names:
            action = rt.actions.get(name)
            if getattr(action, "run_batch", None) is None:
                continue
            if _due(work.states.get(name) or ActionState(), rt):
                groups.setdefault(name, []).append((work, _context(work, name, rt)))
    for name, members in groups.items():
        run_batch = cast(BatchAction, rt.actions[name]).run_batch
        ctxs = [ctx for _, ctx in members]
        started = time.perf_counter()
        outcomes: list[ActionResult | Exception]
        try:
            with log_context(action=name, batch=len(ctxs)):
                outcomes = list(run_batch(ctxs))
            if len(outcomes) != len(ctxs):
                raise TypeError(f"run_batch answered {len(outcomes)} outcomes for {len(ctxs)} events")
        except Exception as exc:
            outcomes = [exc] * len(ctxs)
        for (work, ctx), outcome in zip(members, outcomes, strict=True):
            work.ran[name] = (ctx, outcome, started)


def run_action(work: Work, name: str, action: Action, state: ActionState, rt: Runtime) -> ActionState:
    """One attempt of one action; returns its new state (the side effects it recorded go to work.effects).

    An attempt run_batch made already (work.ran) is recorded here as if the action had been called now.
    """
    state = replace(state, first_attempt_at=state.first_attempt_at or rt.clock())
    ran = work.ran.pop(name, None)
    ctx = ran[0] if ran else _context(work, name, rt)
    extra = {"event_id": work.ev.id, "event_type": work.event_type, "action": name}
    started = ran[2] if ran else time.perf_counter()
    try:
        # Bound, so the lines an action logs itself (the mailer's, say) say which event and action they are.
        with log_context(**extra):
            if ran is None:
                result = action(ctx)
            elif isinstance(ran[1], Exception):
                raise ran[1]
            elif isinstance(ran[1], ActionResult):
                result = ran[1]
            else:
                raise TypeError(f"run_batch answered {type(ran[1]).__name__}, not an ActionResult")
    except PermanentError as exc:
        log.warning("action failed permanently", extra={**extra, "reason": exc.reason, "error": str(exc)})
        return _record(state, rt, ActionStatus.DEAD, error=str(exc), reason=exc.reason, started=started)
    except TransientError as exc:
        return _retry_or_die(state, rt, action, str(exc), exc.reason, exc.retry_after, extra, started)
    except Exception as exc:
        log.exception("action raised an unexpected error", extra={**extra, "reason": "unexpected"})
        detail = "".join(traceback.format_exception_only(exc)).strip()
        return _retry_or_die(state, rt, action, detail, "unexpected", None, extra, started)
    log.info("action %s", result.status, extra={**extra, "detail": result.detail})
    return _record(state, rt, ActionStatus(result.status), started=started, detail=result.detail)


def backoff(attempt: int, rt: Runtime) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**(attempt-1))]."""
    ceiling = min(
        rt.settings.action_backoff_cap_s, rt.settings.action_backoff_base_s * 2 ** max(attempt - 1, 0)
    )
    return rt.rng() * ceiling


def _retry_or_die(
    state: ActionState,
    rt: Runtime,
    action: Action,
    error: str,
    reason: str,
    retry_after: float | None,
    extra: dict[str, Any],
    started: float,
) -> ActionState:
    attempts = state.attempts + 1
    age = rt.clock() - (state.first_attempt_at or rt.clock())
    limits = getattr(action, "limits", None) or ActionLimits()
    max_attempts = limits.max_attempts or rt.settings.action_max_attempts
    max_age = limits.max_age_s or rt.settings.action_max_age_s
    if attempts >= max_attempts or age >= max_age:
        log.error("action gave up", extra={**extra, "reason": reason, "attempts": attempts, "error": error})
        return _record(state, rt, ActionStatus.DEAD, error=error, reason=reason, started=started)
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
    new = _record(state, rt, ActionStatus.FAILED, error=error, reason=reason, started=started)
    return replace(new, next_attempt_at=rt.clock() + delay)


def _record(
    state: ActionState,
    rt: Runtime,
    status: ActionStatus,
    *,
    error: str | None = None,
    reason: str | None = None,
    started: float | None = None,
    detail: str | None = None,
) -> ActionState:
    """`state` after one attempt that ended in `status`, with the attempt in its history."""
    entry: dict[str, Any] = {"at": rt.clock(), "outcome": str(status)}
    if error:
        entry["error"] = error[:500]
    if detail:
        entry["detail"] = detail
    if started is not None:
        entry["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return replace(
        state,
        status=status,
        attempts=state.attempts + 1,
        last_error=error[:500] if error else state.last_error,
        reason=reason if status in _FAILING else (detail or None),
        next_attempt_at=None,
        history=(*state.history, entry)[-_HISTORY:],
    )


_FAILING = frozenset({ActionStatus.FAILED, ActionStatus.DEAD})


def _event_status(states: list[ActionState]) -> tuple[Status, float | None]:
    # Still retrying wins over gave up: the event stays scheduled until every action has settled.
    if any(not s.settled for s in states):
        due = [s.next_attempt_at for s in states if s.status == ActionStatus.FAILED and s.next_attempt_at]
        return Status.FAILED, min(due) if due else None
    if any(s.status == ActionStatus.DEAD for s in states):
        return Status.DEAD, None
    return Status.PROCESSED, None
