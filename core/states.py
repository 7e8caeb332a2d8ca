"""The states an event and an action can be in, spelled once.

`Status` and `ActionStatus` are string enums: their members are the strings the store keeps, the admin API
answers and the metrics label, so they compare equal to those strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """An event's status."""

    QUEUED = "queued"  # stored and handed to the broker
    PROCESSING = "processing"  # a worker started it
    PROCESSED = "processed"  # every routed action succeeded or had nothing to do
    IGNORED = "ignored"  # valid (or a distribution's own shape), and nothing routes it
    INVALID = "invalid"  # quarantined: not a usable event; never retried, replayable after a fix
    FAILED = "failed"  # an action is waiting for its retry
    DEAD = "dead"  # an action gave up (or the event kept killing its worker)


STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
TERMINAL: frozenset[str] = frozenset({Status.PROCESSED, Status.IGNORED, Status.INVALID, Status.DEAD})
UNFINISHED: tuple[Status, ...] = (Status.QUEUED, Status.PROCESSING, Status.FAILED)


class ActionStatus(StrEnum):
    """One action's status within an event."""

    PENDING = "pending"  # not run yet (or reset for a replay)
    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"  # nothing to do: not an error
    FAILED = "failed"  # will retry at `next_attempt_at`
    DEAD = "dead"  # gave up


SETTLED_ACTIONS: frozenset[str] = frozenset({ActionStatus.SUCCEEDED, ActionStatus.SKIPPED, ActionStatus.DEAD})


@dataclass(frozen=True)
class ActionState:
    """An action's state within one event, as the store keeps it (JSON) and the admin API shows it."""

    status: ActionStatus = ActionStatus.PENDING
    attempts: int = 0
    first_attempt_at: float | None = None
    next_attempt_at: float | None = None
    last_error: str | None = None
    reason: str | None = None  # why it failed or died, or the detail of its last success
    replays: int = 0
    history: tuple[dict[str, Any], ...] = field(
        default_factory=tuple
    )  # {"at", "outcome", "error"|"detail", "ms"}

    @property
    def settled(self) -> bool:
        """Succeeded, skipped or dead: a run of its event leaves it alone (a replay resets it)."""
        return self.status in SETTLED_ACTIONS

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "status": str(self.status),
            "attempts": self.attempts,
            "first_attempt_at": self.first_attempt_at,
            "next_attempt_at": self.next_attempt_at,
            "last_error": self.last_error,
            "reason": self.reason,
            "replays": self.replays,
            "history": list(self.history),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ActionState:
        """Read the stored form (fields an older version did not write take their defaults)."""
        return cls(
            status=ActionStatus(d.get("status") or ActionStatus.PENDING),
            attempts=int(d.get("attempts") or 0),
            first_attempt_at=d.get("first_attempt_at"),
            next_attempt_at=d.get("next_attempt_at"),
            last_error=d.get("last_error"),
            reason=d.get("reason"),
            replays=int(d.get("replays") or 0),
            history=tuple(d.get("history") or ()),
        )

    def reset_for_replay(self) -> ActionState:
        """Pending again with a fresh budget of attempts; the history stays."""
        return replace(
            self,
            status=ActionStatus.PENDING,
            attempts=0,
            first_attempt_at=None,
            next_attempt_at=None,
            replays=self.replays + 1,
        )
