"""Test doubles shared across the suite: recording null implementations rather than mocks (STYLE.md)."""

from __future__ import annotations

from typing import Any

from workers.actions import ActionResult
from workers.errors import PermanentError, TransientError


class RecordingQueue:
    """Records what is enqueued, and on which queue; can be told to fail like an unreachable broker."""

    inline = False  # the intake calls process_event after the store write, where we can see it

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.fail = False

    def process_event(self, event_id: str, *, queue: str = "events") -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append((event_id, queue))

    def replay_job(self, job_id: str) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append((job_id, "replay_job"))

    def ping(self) -> bool:
        return not self.fail


class RecordingMailer:
    """A mailer that keeps what it was asked to send, or fails the way it is told to."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.deadlines: list[float | None] = []  # of every send asked for, sent or not
        self.envelopes: list[Any] = []
        self.fail_with: BaseException | None = None

    def send(self, message: Any, *, deadline: float | None = None, envelope: Any = None) -> None:
        self.deadlines.append(deadline)
        self.envelopes.append(envelope)
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(message)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class ScriptedAction:
    """An action that plays back a script of outcomes: an ActionResult, or an exception to raise."""

    def __init__(self, *outcomes: ActionResult | Exception) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def __call__(self, ctx: Any) -> ActionResult:
        self.calls += 1
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


OK = ActionResult("succeeded")
FLAKY = TransientError("downstream timed out", reason="timeout")
BROKEN = PermanentError("downstream said 400", reason="http_400")
