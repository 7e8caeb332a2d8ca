"""Downstream actions: one unit of work each, idempotent, behind one small interface.

An action returns an ActionResult (succeeded, or skipped with a reason) or raises TransientError /
PermanentError; the pipeline records the outcome and decides about retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from ingest.store import EventStore
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

    def __post_init__(self) -> None:
        if not self.event_type and self.parsed is not None:
            object.__setattr__(self, "event_type", self.parsed.event_type)


@dataclass(frozen=True)
class ActionResult:
    status: Literal["succeeded", "skipped"]
    detail: str | None = None


class Action(Protocol):
    """Runs one downstream side effect for one event."""

    def __call__(self, ctx: ActionContext) -> ActionResult: ...
