"""Downstream actions: one unit of work each, idempotent, behind one small interface.

An action returns an ActionResult (succeeded, or skipped with a reason) or raises TransientError /
PermanentError; the pipeline records the outcome and decides about retries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from core.logs import log_context
from core.states import ActionStatus
from core.store import Done
from workers.errors import TransientError

if TYPE_CHECKING:
    from core.store import EventStore
    from schemas import ParsedEvent


@dataclass(frozen=True)
class ActionContext:
    """What an action gets: the validated event and where to record its side effects."""

    event_id: str
    attempt_id: str  # unique per attempt: the holder of side-effect reservations
    parsed: ParsedEvent | None  # None only for Payload-designer bodies routed by source (forwards)
    raw: bytes
    store: EventStore
    event_type: str = ""  # the parsed event's type unless given (a designer body's may be "")
    # Where `once` leaves the side effects that happened, for the pipeline to record in the same round trip
    # as the action's state; None records each one at once.
    effects: list[Done] | None = None
    # What this event's log lines carry (task_id, task, event_id, event_type, action): bound already around
    # a call of the action; a run_batch binds them per event with `logging()`.
    log_fields: Mapping[str, Any] = field(default_factory=dict)

    def logging(self) -> AbstractContextManager[None]:
        """Bind this event's log fields, so what run_batch logs for it says which task, event and action."""
        return log_context(**self.log_fields)

    def __post_init__(self) -> None:
        if not self.event_type and self.parsed is not None:
            object.__setattr__(self, "event_type", self.parsed.event_type)


@dataclass(frozen=True)
class ActionResult:
    status: ActionStatus  # SUCCEEDED or SKIPPED: failures are raised (TransientError, PermanentError)
    detail: str | None = None


@dataclass(frozen=True)
class ActionLimits:
    """An action's own retry limits; None takes ACTION_MAX_ATTEMPTS / ACTION_MAX_AGE_SECONDS."""

    max_attempts: int | None = None
    max_age_s: float | None = None


class Action(Protocol):
    """Runs one downstream side effect for one event. It may carry `limits: ActionLimits`."""

    def __call__(self, ctx: ActionContext) -> ActionResult: ...


class BatchAction(Action, Protocol):
    """An action that can also run for a whole batch of events at once (docs/batches.md).

    When a worker processes a batch, it calls `run_batch` once with the contexts of every event of the
    batch the action is due for, instead of calling the action for each. `results[i]` belongs to
    `ctxs[i]`: an ActionResult, or the exception calling the action with that context would have raised
    (TransientError retries that event's attempt, PermanentError ends it, anything else is unexpected).
    If run_batch itself raises, every attempt in the batch gets that exception. Each context keeps its own
    attempt_id and effects list; the action's writes for the whole batch must be durable before it returns.
    """

    def run_batch(self, ctxs: Sequence[ActionContext]) -> list[ActionResult | Exception]: ...


def once(
    ctx: ActionContext,
    key: str,
    effect: Callable[[], None],
    *,
    what: str,
    hold_s: float,
    remember_s: int,
) -> bool:
    """Run `effect` at most once per business `key`: False when it already happened.

    The key is reserved for this attempt while the effect runs (`hold_s`: how long a crashed holder blocks
    others), released if it fails so a retry can take it, and marked done for `remember_s` after it worked.
    Another attempt holding the key is a TransientError that retries when that reservation lapses.
    """
    verdict = ctx.store.reserve(key, ctx.attempt_id, int(hold_s))
    if verdict == "done":
        return False
    if verdict == "busy":
        # If the other holder died, nothing sooner than its reservation's end helps.
        raise TransientError(
            f"{what} is in progress in another worker", reason="busy", retry_after=ctx.store.reserved_for(key)
        )
    try:
        effect()
    except Exception:
        ctx.store.release(key, ctx.attempt_id)
        raise
    done = Done(key, ctx.attempt_id, remember_s, patience=hold_s * 0.8)
    if ctx.effects is None:
        ctx.store.complete(done.key, done.holder, done.ttl, patience=done.patience)
    else:
        ctx.effects.append(done)
    return True
